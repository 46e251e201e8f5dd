// The tensor codec: round trips for every dtype and both forms, zero-copy views, and every
// size / shape / dtype error with its code, message and path, raised before allocation.
import t, { type Test } from 'tap'
import { LossServerError } from '../../src/errors.ts'
import type { HostTensor, WireDtype } from '../../src/tensor.ts'
import { decodeTensor, decodeTensorTree, encodeTensor, encodeTensorTree } from '../../src/wire/tensor-codec.ts'
import { decode, encode } from '../../src/wire/msgpack.ts'
import { roundToBfloat16, roundToFloat16 } from '../../src/wire/half.ts'

const LIMITS = { maxElements: 1 << 20 }
const P = ['inputs', 'anchor', 1]

function bitsEqual (a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length)
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length)
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false
  }
  return true
}

function throwsCode (t: Test, fn: () => unknown, code: string, path: unknown[], msg: RegExp[], what: string): void {
  try {
    fn()
    t.fail(`${what}: did not throw`)
  } catch (e) {
    t.ok(e instanceof LossServerError, `${what}: a LossServerError (${(e as Error).message})`)
    const err = e as LossServerError
    t.equal(err.code, code, `${what}: code`)
    t.same(err.path, path, `${what}: path`)
    for (const m of msg) t.match(err.message, m, `${what}: message says ${m}`)
  }
}

// values exactly representable in each dtype: extremes, subnormals, signed zero, Inf, NaN
const VALUES: Record<WireDtype, number[]> = {
  float32: [0, -0, 1, -2.5, 3.4028234663852886e38, -3.4028234663852886e38, 1.1754943508222875e-38, 1.401298464324817e-45, -1.401298464324817e-45, Infinity, -Infinity, NaN, Math.fround(Math.PI)],
  float16: [0, -0, 1, -2.5, 65504, -65504, 2 ** -14, 2 ** -24, -(2 ** -24), 1023 * 2 ** -24, Infinity, -Infinity, NaN, roundToFloat16(Math.PI)],
  bfloat16: [0, -0, 1, -2.5, roundToBfloat16(3.38e38), -roundToBfloat16(3.38e38), 2 ** -126, 2 ** -133, -(2 ** -133), Infinity, -Infinity, NaN, roundToBfloat16(Math.PI)],
  float64: [0, -0, 1, -2.5, 3.4028234663852886e38, 1.401298464324817e-45, Infinity, -Infinity, NaN, Math.fround(Math.PI)]
}

t.test('msgpack round trip for every dtype, through real msgpack bytes', async t => {
  for (const [dtype, values] of Object.entries(VALUES) as Array<[WireDtype, number[]]>) {
    const host: HostTensor = { shape: [1, values.length], data: Float32Array.from(values) }
    const wire = encodeTensor(host, dtype, 'msgpack')
    t.ok(wire.data instanceof Uint8Array, `${dtype}: data is bytes`)
    t.equal((wire.data as Uint8Array).byteLength, values.length * { float32: 4, float16: 2, bfloat16: 2, float64: 8 }[dtype], `${dtype}: itemsize`)
    const body = decode(encode({ t: wire })) as { t: unknown }
    const back = decodeTensor(body.t, ['t'], LIMITS)
    t.equal(back.dtype, dtype)
    t.same(back.tensor.shape, [1, values.length])
    t.ok(bitsEqual(back.tensor.data, host.data), `${dtype}: every value comes back bit for bit`)
  }
})

t.test('the bytes are little-endian IEEE (what NumPy tobytes() writes)', async t => {
  const w32 = encodeTensor({ shape: [2], data: Float32Array.of(1, -2) }, 'float32', 'msgpack')
  t.same([...(w32.data as Uint8Array)], [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0])
  const w16 = encodeTensor({ shape: [2], data: Float32Array.of(1, -2) }, 'float16', 'msgpack')
  t.same([...(w16.data as Uint8Array)], [0x00, 0x3c, 0x00, 0xc0])
  const wb = encodeTensor({ shape: [2], data: Float32Array.of(1, -2) }, 'bfloat16', 'msgpack')
  t.same([...(wb.data as Uint8Array)], [0x80, 0x3f, 0x00, 0xc0])
  const w64 = encodeTensor({ shape: [1], data: Float32Array.of(1) }, 'float64', 'msgpack')
  t.same([...(w64.data as Uint8Array)], [0, 0, 0, 0, 0, 0, 0xf0, 0x3f])
  // and decoding reads them the same way
  const d = decodeTensor({ dtype: 'float16', shape: [2], data: Buffer.from([0x00, 0x3c, 0x00, 0xc0]) }, [], LIMITS)
  t.same([...d.tensor.data], [1, -2])
})

t.test('JSON round trip for every dtype; JSON and msgpack agree on rounding', async t => {
  for (const [dtype, values] of Object.entries(VALUES) as Array<[WireDtype, number[]]>) {
    // JSON has no NaN or Infinity, and JSON.stringify writes -0 as 0
    const finite = values.filter(v => Number.isFinite(v) && !Object.is(v, -0))
    const host: HostTensor = { shape: [finite.length], data: Float32Array.from(finite) }
    const json = JSON.parse(JSON.stringify(encodeTensor(host, dtype, 'json')))
    t.ok(Array.isArray(json.data), `${dtype}: data is numbers`)
    const back = decodeTensor(json, ['t'], LIMITS)
    t.ok(bitsEqual(back.tensor.data, host.data), `${dtype}: every finite value comes back bit for bit`)
  }
  // arbitrary values: the JSON numbers are what the msgpack bytes hold
  const data = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 10 ** ((i % 12) - 6))
  for (const dtype of ['float16', 'bfloat16', 'float32', 'float64'] as const) {
    const j = encodeTensor({ shape: [1000], data }, dtype, 'json').data as number[]
    const m = decodeTensor(encodeTensor({ shape: [1000], data }, dtype, 'msgpack'), [], LIMITS).tensor.data
    t.ok(bitsEqual(Float32Array.from(j), m), `${dtype}: JSON numbers equal the decoded msgpack bytes`)
    // a client sending those numbers as JSON gets the same tensor
    t.ok(bitsEqual(decodeTensor({ dtype, shape: [1000], data: j }, [], LIMITS).tensor.data, m), `${dtype}: decoding the JSON form agrees`)
  }
  // JSON values are rounded to the declared dtype, as the bytes would be
  t.same([...decodeTensor({ dtype: 'float16', shape: [2], data: [1.0001, 70000] }, [], LIMITS).tensor.data], [1, Infinity])
  t.same([...decodeTensor({ dtype: 'bfloat16', shape: [1], data: [1.00390625] }, [], LIMITS).tensor.data], [1], 'bf16 tie to even')
})

t.test('scalars and empty tensors', async t => {
  const s = decodeTensor({ dtype: 'float32', shape: [], data: [7] }, [], LIMITS)
  t.same(s.tensor.shape, [])
  t.same([...s.tensor.data], [7])
  const e = decodeTensor({ dtype: 'float32', shape: [3, 0, 1000000000000], data: new Uint8Array(0) }, [], LIMITS)
  t.equal(e.tensor.data.length, 0, 'a zero dimension makes an empty tensor whatever the others claim')
  const w = encodeTensor({ shape: [0, 2], data: new Float32Array(0) }, 'float16', 'msgpack')
  t.equal((w.data as Uint8Array).byteLength, 0)
})

t.test('float32 bin at an aligned offset is a zero-copy view; misaligned is one copy', async t => {
  const values = Float32Array.from({ length: 64 }, (_, i) => i / 3)
  const seen = { aligned: 0, misaligned: 0 }
  for (let pad = 0; pad < 4; pad++) {
    const bytes = encode({ pad: 'x'.repeat(pad), t: encodeTensor({ shape: [8, 8], data: values }, 'float32', 'msgpack') })
    // a fresh ArrayBuffer at offset 0, so a bin's byteOffset is its position in the body
    const body = new Uint8Array(new ArrayBuffer(bytes.length))
    body.set(bytes)
    const decoded = decode(body) as { t: { data: Uint8Array } }
    const bin = decoded.t.data
    t.equal(bin.buffer, body.buffer, 'msgpack bin is a view into the body')
    const out = decodeTensor(decoded.t, ['t'], LIMITS).tensor.data
    t.ok(bitsEqual(out, values), `pad ${pad}: values`)
    if (bin.byteOffset % 4 === 0) {
      seen.aligned++
      t.equal(out.buffer, body.buffer, `pad ${pad}: aligned -> shares the body's memory`)
      t.equal(out.byteOffset, bin.byteOffset)
      body[bin.byteOffset + 7] ^= 0x80 // flip the sign of element 1 in the body
      t.equal(out[1], -values[1], 'writes to the body show through the view')
    } else {
      seen.misaligned++
      t.not(out.buffer, body.buffer, `pad ${pad}: misaligned -> a copy`)
    }
  }
  t.ok(seen.aligned > 0 && seen.misaligned > 0, `both cases constructed (${JSON.stringify(seen)})`)
  // Node Buffers (as fastify hands them over) work too, at any offset
  const pool = Buffer.alloc(4 * 16 + 1)
  Buffer.from(values.buffer, 0, 64).copy(pool, 1)
  const mis = decodeTensor({ dtype: 'float32', shape: [16], data: pool.subarray(1) }, [], LIMITS).tensor.data
  t.ok(bitsEqual(mis, values.subarray(0, 16)))
  // encoding float32 is a view over the tensor's own memory
  const w = encodeTensor({ shape: [64], data: values }, 'float32', 'msgpack').data as Uint8Array
  t.equal(w.buffer, values.buffer, 'msgpack float32 data is a view, no copy')
})

t.test('float64 / float16 / bfloat16 at misaligned offsets', async t => {
  for (const dtype of ['float64', 'float16', 'bfloat16'] as const) {
    const values = Float32Array.from([1, -2, 0.5, 1024])
    const bytes = encodeTensor({ shape: [4], data: values }, dtype, 'msgpack').data as Uint8Array
    // a Node Buffer: its slice() is a view, so the copy must not rely on it
    const buf = Buffer.alloc(bytes.length + 3)
    for (const off of [1, 2, 3]) {
      buf.fill(0xee)
      buf.set(bytes, off)
      t.ok(bitsEqual(decodeTensor({ dtype, shape: [4], data: buf.subarray(off, off + bytes.length) }, [], LIMITS).tensor.data, values), `${dtype} at offset ${off}`)
    }
  }
})

t.test('a shape claiming 10^12 elements with 16 bytes is invalid_tensor before any allocation', async t => {
  const data = new Uint8Array(16)
  const before = process.memoryUsage().arrayBuffers
  let err: unknown
  try { decodeTensor({ dtype: 'float32', shape: [1000000, 1000000], data }, P, { maxElements: 100_000_000 }) } catch (e) { err = e }
  const grown = process.memoryUsage().arrayBuffers - before
  t.ok(err instanceof LossServerError)
  const e = err as LossServerError
  t.equal(e.code, 'invalid_tensor', 'a shape that disagrees with its data is malformed, not large')
  t.equal(e.status, 400)
  t.match(e.message, /16 bytes/, 'shows the bytes sent')
  t.match(e.message, /needs 4000000000000/, 'shows the bytes the shape claims')
  t.same(e.path, [...P, 'data'])
  t.ok(grown < 1 << 20, `array buffer memory grew by ${grown} bytes`)
  // far beyond 2^53 the claim is just as malformed
  throwsCode(t, () => decodeTensor({ dtype: 'float16', shape: [2 ** 40, 2 ** 40, 3], data }, P, LIMITS), 'invalid_tensor', [...P, 'data'], [/16 bytes/], 'beyond 2^53')
})

t.test('limits: exactly maxElements passes, one more is too_large', async t => {
  const limits = { maxElements: 12 }
  t.equal(decodeTensor({ dtype: 'float32', shape: [3, 4], data: new Uint8Array(48) }, [], limits).tensor.data.length, 12)
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [13], data: new Uint8Array(52) }, P, limits), 'too_large', [...P, 'shape'], [/13 elements/, /12/], 'one over')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [13], data: new Array(13).fill(0) }, P, limits), 'too_large', [...P, 'shape'], [/13 elements/], 'JSON one over')
})

t.test('byteLength must be prod(shape) * itemsize', async t => {
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [2, 3], data: new Uint8Array(20) }, P, LIMITS), 'invalid_tensor', [...P, 'data'], [/20 bytes/, /24/, /inputs\.anchor\[1\]/], 'short')
  throwsCode(t, () => decodeTensor({ dtype: 'float16', shape: [2, 3], data: new Uint8Array(24) }, P, LIMITS), 'invalid_tensor', [...P, 'data'], [/24 bytes/, /needs 12/], 'float16 given float32 bytes')
  throwsCode(t, () => decodeTensor({ dtype: 'float64', shape: [1], data: new Uint8Array(9) }, P, LIMITS), 'invalid_tensor', [...P, 'data'], [/9 bytes/, /needs 8/], 'long')
})

t.test('shape errors', async t => {
  const d = new Uint8Array(0)
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [2, -1], data: d }, P, LIMITS), 'invalid_tensor', [...P, 'shape', 1], [/shape\[1\]/, /-1/], 'negative')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [2.5], data: d }, P, LIMITS), 'invalid_tensor', [...P, 'shape', 0], [/2\.5/], 'fractional')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [NaN], data: d }, P, LIMITS), 'invalid_tensor', [...P, 'shape', 0], [/NaN/], 'NaN')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [Infinity], data: d }, P, LIMITS), 'invalid_tensor', [...P, 'shape', 0], [/Infinity/], 'Infinity')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [2 ** 53], data: d }, P, LIMITS), 'invalid_tensor', [...P, 'shape', 0], [/9007199254740992/], 'unsafe integer')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: ['3'], data: d }, P, LIMITS), 'invalid_tensor', [...P, 'shape', 0], [/"3"/], 'string')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: 3, data: d }, P, LIMITS), 'invalid_tensor', [...P, 'shape'], [/array/], 'not an array')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [1, 1, 1, 1, 1, 1, 1, 1, 1], data: new Uint8Array(4) }, P, LIMITS), 'invalid_tensor', [...P, 'shape'], [/rank 9/, /8/], 'rank 9')
  t.equal(decodeTensor({ dtype: 'float32', shape: [1, 1, 1, 1, 1, 1, 1, 1], data: new Uint8Array(4) }, P, LIMITS).tensor.shape.length, 8, 'rank 8 is fine')
})

t.test('dtype and structure errors', async t => {
  const d = new Uint8Array(4)
  throwsCode(t, () => decodeTensor({ dtype: 'int32', shape: [1], data: d }, P, LIMITS), 'invalid_tensor', [...P, 'dtype'], [/"int32"/, /float32, float16, bfloat16, float64/], 'unknown dtype')
  throwsCode(t, () => decodeTensor({ dtype: 'constructor', shape: [1], data: d }, P, LIMITS), 'invalid_tensor', [...P, 'dtype'], [/constructor/], 'prototype name as dtype')
  throwsCode(t, () => decodeTensor({ dtype: 4, shape: [1], data: d }, P, LIMITS), 'invalid_tensor', [...P, 'dtype'], [/4/], 'number dtype')
  for (const field of ['dtype', 'shape', 'data']) {
    const v: Record<string, unknown> = { dtype: 'float32', shape: [1], data: d }
    delete v[field]
    throwsCode(t, () => decodeTensor(v, P, LIMITS), 'invalid_tensor', [...P, field], [new RegExp(`missing '${field}'`)], `missing ${field}`)
  }
  throwsCode(t, () => decodeTensor([1, 2], P, LIMITS), 'invalid_tensor', P, [/expected a tensor/], 'an array')
  throwsCode(t, () => decodeTensor(null, P, LIMITS), 'invalid_tensor', P, [/null/], 'null')
  throwsCode(t, () => decodeTensor(new Uint8Array(4), P, LIMITS), 'invalid_tensor', P, [/4 bytes/], 'bare bytes')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [1], data: 'AAAAAA==' }, P, LIMITS), 'invalid_tensor', [...P, 'data'], [/bytes .*or an array of numbers/], 'base64 string data')
})

t.test('JSON data errors', async t => {
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [3], data: [1, null, 3] }, P, LIMITS), 'invalid_tensor', [...P, 'data', 1], [/data\[1\]/, /null/], 'null')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [3], data: [1, 2, 'NaN'] }, P, LIMITS), 'invalid_tensor', [...P, 'data', 2], [/"NaN"/], 'string')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [3], data: [1, [2], 3] }, P, LIMITS), 'invalid_tensor', [...P, 'data', 1], [/an array/], 'nested')
  throwsCode(t, () => decodeTensor({ dtype: 'float32', shape: [2, 2], data: [1, 2, 3] }, P, LIMITS), 'invalid_tensor', [...P, 'data'], [/3 numbers/, /needs 4/], 'length')
})

t.test('tensor trees: inputs with lists, params without, grads with dtypes', async t => {
  const ones = (n: number): number[] => new Array(n).fill(1)
  const body = {
    anchor: [{ dtype: 'float16', shape: [2], data: ones(2) }, { dtype: 'float32', shape: [1], data: ones(1) }],
    positive: { dtype: 'bfloat16', shape: [3], data: ones(3) }
  }
  const { tensors, dtypes } = decodeTensorTree(body, ['inputs'], LIMITS)
  t.same(dtypes, { anchor: ['float16', 'float32'], positive: 'bfloat16' })
  t.equal((tensors.anchor as HostTensor[])[0].data.length, 2)
  t.equal((tensors.positive as HostTensor).data.length, 3)
  throwsCode(t, () => decodeTensorTree({ anchor: [body.anchor[0], { dtype: 'float32', shape: [-1], data: [] }] }, ['inputs'], LIMITS), 'invalid_tensor', ['inputs', 'anchor', 1, 'shape', 0], [/inputs\.anchor\[1\]\.shape\[0\]|inputs\.anchor\[1\]/], 'path into a list')
  throwsCode(t, () => decodeTensorTree({ w: [body.positive] }, ['params'], LIMITS, { lists: false }), 'invalid_body', ['params', 'w'], [/one tensor/], 'params are not lists')
  throwsCode(t, () => decodeTensorTree([body.positive], ['inputs'], LIMITS), 'invalid_body', ['inputs'], [/map of name to tensor/], 'not a map')

  const grads = encodeTensorTree(tensors, dtypes, 'msgpack')
  t.same((grads.anchor as Array<{ dtype: string }>).map(g => g.dtype), ['float16', 'float32'], 'grads in the dtype of their input')
  t.equal((grads.positive as { dtype: string }).dtype, 'bfloat16')
  const as64 = encodeTensorTree(tensors, 'float64', 'json')
  t.same((as64.anchor as Array<{ dtype: string, data: number[] }>).map(g => [g.dtype, g.data.length]), [['float64', 2], ['float64', 1]], 'grad_dtype overrides')
  t.equal((encodeTensorTree({ x: tensors.positive }, {}, 'json').x as { dtype: string }).dtype, 'float32', 'missing dtype -> float32')
})
