// safetensors reader/writer: round trips, files written by the Python package (committed
// under test/fixtures-local/safetensors by scripts/make-safetensors-fixtures.py, and written
// afresh when Python is here), our files read by Python, and every corruption class.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { LossServerError } from '../../src/errors.ts'
import { readSafetensors, writeSafetensors, type ReadResult, type SafetensorsDtype, type TensorToWrite } from '../../src/store/safetensors.ts'
import { roundToBfloat16, roundToFloat16 } from '../../src/wire/half.ts'
import { hasPythonModules, python, pythonScript } from '../helpers/python.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const FIXTURES = path.join(ROOT, 'test', 'fixtures-local', 'safetensors')
const MAKE_FIXTURES = path.join(ROOT, 'scripts', 'make-safetensors-fixtures.py')

function bitsOf (data: Float32Array): number[] {
  return Array.from(new Uint32Array(data.buffer, data.byteOffset, data.length))
}

/** A file from a header given as text, padded with spaces to 8 bytes, and a data buffer. */
function rawFile (header: string, data: Uint8Array | number = 0): Buffer {
  const json = Buffer.from(header, 'utf8')
  const n = Math.ceil(json.length / 8) * 8
  const bytes = typeof data === 'number' ? new Uint8Array(data) : data
  const out = Buffer.alloc(8 + n + bytes.length, 0x20)
  out.writeBigUInt64LE(BigInt(n), 0)
  json.copy(out, 8)
  out.set(bytes, 8 + n)
  return out
}

function rejects (t: Test, buf: Uint8Array, key: string | undefined, message: RegExp, what: string, opts = {}): void {
  let err: unknown
  try {
    readSafetensors(buf, opts)
  } catch (e) {
    err = e
  }
  t.ok(err instanceof LossServerError, `${what}: LossServerError (got ${String(err)})`)
  if (!(err instanceof LossServerError)) return
  t.equal(err.code, 'invalid_body', `${what}: code`)
  t.same(err.path, key === undefined ? ['state'] : ['state', key], `${what}: path`)
  t.match(err.message, message, `${what}: message '${err.message}'`)
}

/** Compares what we read with expected.json's description of a file. */
function matchesExpected (t: Test, got: ReadResult, expected: { metadata: Record<string, string>, tensors: Record<string, { dtype: string, shape: number[], bits: number[] }> }, label: string): void {
  t.same({ ...got.metadata }, expected.metadata, `${label}: metadata`)
  t.same(Object.keys(got.tensors).sort(), Object.keys(expected.tensors).sort(), `${label}: names`)
  for (const [name, e] of Object.entries(expected.tensors)) {
    const g = got.tensors[name]
    if (!g) continue
    t.equal(g.dtype, e.dtype, `${label} ${name}: dtype`)
    t.same(g.shape, e.shape, `${label} ${name}: shape`)
    // NaN: any NaN (payloads are not the format's business once converted); else exact bits
    const ok = bitsOf(g.data).every((b, i) => b === e.bits[i] || (Number.isNaN(g.data[i]) && (e.bits[i] & 0x7fffffff) > 0x7f800000))
    t.ok(ok && g.data.length === e.bits.length, `${label} ${name}: values bit-identical to the package's float32 conversion`)
  }
}

t.test('round trip: write -> read is bit-identical, and write(read(x)) == x', async t => {
  const nanPayload = new Float32Array(new Uint32Array([0x7fa00001, 0xffc00002]).buffer)
  const values = Float32Array.from([0, -0, 1, -1.5, 3.4e38, -1e-45, Infinity, -Infinity, nanPayload[0], nanPayload[1], 0.1, 65519.99, 1e-8])
  const tensors: Record<string, TensorToWrite> = {
    'a.f32': { dtype: 'F32', shape: [values.length], data: values },
    'b.f16': { dtype: 'F16', shape: [values.length], data: values },
    'c.bf16': { dtype: 'BF16', shape: [values.length], data: values },
    'd.f64': { dtype: 'F64', shape: [values.length], data: values },
    'e.matrix': { dtype: 'F32', shape: [2, 3, 1], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
    'f.scalar': { dtype: 'F32', shape: [], data: Float32Array.of(7) },
    'g.empty': { dtype: 'F16', shape: [4, 0], data: new Float32Array(0) },
    'ünïcode/名前': { dtype: 'BF16', shape: [1], data: Float32Array.of(-3) }
  }
  const buf = writeSafetensors(tensors, { format: 'pt', note: 'ü "quoted" \n' })
  t.equal(buf.readBigUInt64LE(0) % 8n, 0n, 'header length a multiple of 8')
  const back = readSafetensors(buf)
  t.same({ ...back.metadata }, { format: 'pt', note: 'ü "quoted" \n' })
  t.same(bitsOf(back.tensors['a.f32'].data), bitsOf(values), 'F32 bits, NaN payloads included')
  t.same(bitsOf(back.tensors['d.f64'].data), bitsOf(values), 'F64 holds every float32 exactly')
  t.same(Array.from(back.tensors['b.f16'].data), Array.from(values, roundToFloat16), 'F16: round to nearest even')
  t.same(Array.from(back.tensors['c.bf16'].data), Array.from(values, roundToBfloat16), 'BF16: round to nearest even')
  t.same(back.tensors['e.matrix'].shape, [2, 3, 1])
  t.same(back.tensors['f.scalar'], { dtype: 'F32', shape: [], data: Float32Array.of(7) })
  t.same(back.tensors['g.empty'].shape, [4, 0])
  t.equal(back.tensors['ünïcode/名前'].data[0], -3)
  const again = writeSafetensors(Object.fromEntries(Object.entries(back.tensors)), { ...back.metadata })
  t.ok(again.equals(buf), 'write(read(x)) is byte-identical')
})

t.test('layout as the Python package writes it: dtype descending, then name; space padding', async t => {
  const buf = writeSafetensors({
    b: { dtype: 'F16', shape: [1], data: Float32Array.of(1) },
    a: { dtype: 'F16', shape: [1], data: Float32Array.of(2) },
    z: { dtype: 'F64', shape: [1], data: Float32Array.of(3) },
    m: { dtype: 'BF16', shape: [1], data: Float32Array.of(4) },
    k: { dtype: 'F32', shape: [1], data: Float32Array.of(5) }
  })
  const n = Number(buf.readBigUInt64LE(0))
  const header = buf.subarray(8, 8 + n).toString('utf8')
  t.equal(header.trimEnd(), '{"z":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"k":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},' +
    '"m":{"dtype":"BF16","shape":[1],"data_offsets":[12,14]},"a":{"dtype":"F16","shape":[1],"data_offsets":[14,16]},"b":{"dtype":"F16","shape":[1],"data_offsets":[16,18]}}')
  t.match(header, /^[^ ]* *$/, 'padded with spaces only')
  t.equal(buf.length, 8 + n + 18)
  t.same(writeSafetensors({}), Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 32, 32, 32, 32, 32, 32]), 'empty file: "{}" padded')
})

t.test('F32 is zero-copy when aligned, copied when not', async t => {
  const buf = writeSafetensors({ w: { dtype: 'F32', shape: [3], data: Float32Array.of(1, 2, 3) } })
  const aligned = readSafetensors(buf).tensors.w.data
  t.equal(aligned.buffer, buf.buffer, 'a view into the input')
  const shifted = new Uint8Array(buf.length + 1)
  shifted.set(buf, 1)
  const odd = readSafetensors(shifted.subarray(1)).tensors.w.data
  t.not(odd.buffer, shifted.buffer, 'unaligned: a copy')
  t.same(Array.from(odd), [1, 2, 3])
})

t.test('files written by the Python package (committed fixtures) load with the same names, values, dtypes', async t => {
  const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8'))
  for (const file of ['torch-state.safetensors', 'numpy-state.safetensors']) {
    matchesExpected(t, readSafetensors(fs.readFileSync(path.join(FIXTURES, file))), expected[file], file)
  }
  const dtypes = new Set(Object.values(expected['torch-state.safetensors'].tensors).map((e: any) => e.dtype))
  t.same([...dtypes].sort(), ['BF16', 'F16', 'F32', 'F64'], 'the fixtures cover every supported dtype')
})

const pythonReady = hasPythonModules(['numpy', 'torch', 'safetensors'])

t.test('files the installed Python package writes now load the same', async t => {
  const avail = await pythonReady
  if (!avail.ok) { t.comment(avail.reason!); t.skip(`skipped: ${avail.reason}`, async () => {}); return }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'safetensors-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const r = await pythonScript(MAKE_FIXTURES, undefined, { args: [dir] })
  t.ok(r.ok, `scripts/make-safetensors-fixtures.py ran${r.reason ? `: ${r.reason}` : ''}`)
  if (!r.ok) return
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'))
  for (const file of ['torch-state.safetensors', 'numpy-state.safetensors']) {
    const ours = readSafetensors(fs.readFileSync(path.join(dir, file)))
    matchesExpected(t, ours, expected[file], `fresh ${file}`)
    // and we write the same bytes the package wrote, from what we read
    const rewritten = writeSafetensors(Object.fromEntries(Object.entries(ours.tensors).map(([k, v]) => [k, v.dtype === 'F64' ? { ...v, data: rawF64(dir, file, k) } : v])), { ...ours.metadata })
    t.ok(rewritten.equals(fs.readFileSync(path.join(dir, file))), `fresh ${file}: our writer reproduces the package's bytes`)
  }
})

/** The raw F64 bytes of a tensor in a file (our reader narrows F64 to float32). */
function rawF64 (dir: string, file: string, name: string): Uint8Array {
  const buf = fs.readFileSync(path.join(dir, file))
  const n = Number(buf.readBigUInt64LE(0))
  const [begin, end] = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'))[name].data_offsets
  return buf.subarray(8 + n + begin, 8 + n + end)
}

t.test('our files load in Python (safetensors.torch and safetensors.numpy) with the same names and values', async t => {
  const avail = await pythonReady
  if (!avail.ok) { t.comment(avail.reason!); t.skip(`skipped: ${avail.reason}`, async () => {}); return }
  const values = Float32Array.from([0, -0, 1.25, -7, 1e-30, 3e38, 0.1, 1000.5])
  const tensors: Record<string, TensorToWrite> = {
    'encoder.0.weight': { dtype: 'F32', shape: [2, 2, 2, 1], data: values },
    'encoder.0.bias': { dtype: 'F16', shape: [8], data: values },
    'head.weight': { dtype: 'BF16', shape: [4, 2], data: values },
    'head.bias': { dtype: 'F64', shape: [2, 4], data: values },
    step: { dtype: 'F32', shape: [1], data: Float32Array.of(12) }
  }
  const ours = writeSafetensors(tensors, { format: 'pt' })
  const script = `
import json, sys
import numpy as np
from safetensors.torch import load, save
raw = sys.stdin.buffer.read()
tt = load(raw)
# values as float32 bit patterns: exact, and JSON has no Infinity
out = {k: {'dtype': str(v.dtype), 'shape': list(v.shape), 'bits': v.float().reshape(-1).numpy().view(np.uint32).tolist()} for k, v in tt.items()}
same = save(tt, metadata={'format': 'pt'}) == raw
json.dump({'tensors': out, 'resaved_identical': same}, sys.stdout)
`
  const r = await python(script, ours)
  t.ok(r.ok, `python loaded our file${r.reason ? `: ${r.reason}` : ''}`)
  if (!r.ok) return
  const got = JSON.parse(r.stdout.toString('utf8'))
  const torchDtype: Record<SafetensorsDtype, string> = { F32: 'torch.float32', F16: 'torch.float16', BF16: 'torch.bfloat16', F64: 'torch.float64' }
  t.same(Object.keys(got.tensors).sort(), Object.keys(tensors).sort(), 'names')
  for (const [name, w] of Object.entries(tensors)) {
    const g = got.tensors[name]
    t.equal(g.dtype, torchDtype[w.dtype], `${name}: dtype`)
    t.same(g.shape, w.shape, `${name}: shape`)
    const round = w.dtype === 'F16' ? roundToFloat16 : w.dtype === 'BF16' ? roundToBfloat16 : (x: number) => x
    t.same(g.bits, bitsOf(Float32Array.from(w.data as Float32Array, round)), `${name}: values (float32 bits)`)
  }
  t.ok(got.resaved_identical, 'safetensors.torch.save of what it loaded reproduces our bytes')

  // safetensors.numpy (no bfloat16 in NumPy), on a file without BF16
  const noBf16 = writeSafetensors(Object.fromEntries(Object.entries(tensors).filter(([, v]) => v.dtype !== 'BF16')))
  const rn = await python(`
import json, sys
import numpy as np
from safetensors.numpy import load
d = load(sys.stdin.buffer.read())
json.dump({k: {'dtype': v.dtype.name, 'shape': list(v.shape), 'bits': v.astype(np.float32).reshape(-1).view(np.uint32).tolist()} for k, v in d.items()}, sys.stdout)
`, noBf16)
  t.ok(rn.ok, `numpy loaded our file${rn.reason ? `: ${rn.reason}` : ''}`)
  if (!rn.ok) return
  const gotN = JSON.parse(rn.stdout.toString('utf8'))
  const npDtype: Record<string, string> = { F32: 'float32', F16: 'float16', F64: 'float64' }
  for (const [name, w] of Object.entries(tensors)) {
    if (w.dtype === 'BF16') continue
    t.equal(gotN[name]?.dtype, npDtype[w.dtype], `numpy ${name}: dtype`)
    const round = w.dtype === 'F16' ? roundToFloat16 : (x: number) => x
    t.same(gotN[name]?.bits, bitsOf(Float32Array.from(w.data as Float32Array, round)), `numpy ${name}: values (float32 bits)`)
  }
})

t.test('every corruption class is invalid_body naming the problem', async t => {
  const good = writeSafetensors({ a: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) }, b: { dtype: 'F16', shape: [2], data: Float32Array.of(3, 4) } })
  const n = Number(good.readBigUInt64LE(0))

  rejects(t, good.subarray(0, 5), undefined, /truncated header: the file has 5 bytes/, 'truncated before the length')
  rejects(t, good.subarray(0, 8 + n - 3), undefined, new RegExp(`header length ${n} is beyond the file`), 'truncated header')
  const huge = Buffer.from(good)
  huge.writeBigUInt64LE(0xffffffffffffffffn, 0)
  rejects(t, huge, undefined, /header length 18446744073709551615 exceeds the limit of 100000000 bytes/, 'absurd header length')
  rejects(t, good, undefined, new RegExp(`header length ${n} exceeds the limit of ${n - 1} bytes`), 'header one byte over the limit', { maxHeaderBytes: n - 1 })
  t.doesNotThrow(() => readSafetensors(good, { maxHeaderBytes: n }), 'header exactly at the limit')
  rejects(t, good.subarray(0, good.length - 1), 'b', /'b': data_offsets \[8, 12\] out of bounds of the 11-byte data buffer/, 'truncated data')
  rejects(t, Buffer.concat([good, Buffer.from([0, 0, 0, 0])]), undefined, /4 trailing bytes after the last tensor/, 'trailing bytes')

  rejects(t, rawFile('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]', 4), undefined, /not valid JSON/, 'bad JSON')
  rejects(t, rawFile(' {}'), undefined, /starting with '\{', got byte 0x20/, 'header not starting with {')
  rejects(t, rawFile('[]'), undefined, /starting with '\{'/, 'header an array')
  const badUtf8 = rawFile('{"a\u00e9": 1}')
  badUtf8[8 + 3] = 0xff
  rejects(t, badUtf8, undefined, /not valid UTF-8/, 'invalid UTF-8')

  rejects(t, rawFile('{"w": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}', 4), 'w', /unknown dtype "F33"/, 'unknown dtype')
  rejects(t, rawFile('{"w": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}', 8), 'w', /dtype I64 is not supported/, 'unsupported dtype')
  rejects(t, rawFile('{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', 4), 'w', /data_offsets \[0, 8\] out of bounds of the 4-byte data buffer/, 'offsets out of bounds')
  rejects(t, rawFile('{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}', 8), 'w', /size mismatch: shape \[3\] of F32 needs 12 bytes, data_offsets \[0, 8\] span 8/, 'size mismatch')
  rejects(t, rawFile('{"v": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', 8), 'w', /overlap 'v'/, 'overlapping')
  rejects(t, rawFile('{"v": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}', 12), 'w', /gap: data_offsets start at 8, but the previous tensor 'v' ends at 4/, 'gap')
  rejects(t, rawFile('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}', 8), 'w', /gap: data_offsets start at 4, but the data buffer starts at 0/, 'gap at the start')
  rejects(t, rawFile('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}}', 8), 'w', /data_offsets must be \[begin, end\]/, 'begin after end')
  rejects(t, rawFile('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}', 4), 'w', /data_offsets must be/, 'negative offset')
  rejects(t, rawFile('{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}', 4), 'w', /shape must be a list of non-negative integers, got \[1.5\]/, 'fractional dim')
  rejects(t, rawFile('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": 1}}', 4), 'w', /unexpected field "extra"/, 'extra field')
  rejects(t, rawFile('{"w": [1, 2]}', 0), 'w', /expected \{dtype, shape, data_offsets\}/, 'entry not an object')
  rejects(t, rawFile('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', 4), 'w', /duplicate key in the header/, 'duplicate tensor')
  rejects(t, rawFile('{"w": {"dtype": "F32", "dtype": "F16", "shape": [1], "data_offsets": [0, 4]}}', 4), 'w', /duplicate key 'dtype'/, 'duplicate field')
  rejects(t, rawFile('{"__metadata__": {"k": 1}}'), '__metadata__', /metadata 'k' must be a string, got 1/, 'metadata not a string')
  rejects(t, rawFile('{"__metadata__": {"__proto__": "x"}}'), '__metadata__', /__proto__/, 'metadata __proto__')
})

t.test('a __proto__ name never reaches a prototype', async t => {
  const file = rawFile('{"__proto__": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', 4)
  rejects(t, file, '__proto__', /__proto__ is not allowed/, '__proto__ tensor')
  t.equal(({} as any).dtype, undefined, 'Object.prototype untouched')
  // other names are plain own keys of a prototype-less object
  const ok = readSafetensors(rawFile('{"constructor": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', 4))
  t.equal(Object.getPrototypeOf(ok.tensors), null)
  const name: string = 'constructor'
  t.equal(ok.tensors[name].dtype, 'F32')
})

t.test('the writer rejects what it cannot write', async t => {
  const cases: Array<[Record<string, any>, RegExp]> = [
    [{ w: { dtype: 'I64', shape: [1], data: new Float32Array(1) } }, /unsupported dtype "I64"/],
    [{ w: { dtype: 'F32', shape: [2], data: new Float32Array(3) } }, /shape \[2\] needs 2 float32 values, got 3/],
    [{ w: { dtype: 'F16', shape: [2], data: new Uint8Array(3) } }, /3 raw bytes, but shape \[2\] of F16 needs 4/],
    [{ w: { dtype: 'F32', shape: [-1], data: new Float32Array(0) } }, /invalid shape \[-1\]/],
    [{ __metadata__: { dtype: 'F32', shape: [1], data: new Float32Array(1) } }, /reserved name/]
  ]
  for (const [tensors, msg] of cases) {
    const e = t.throws(() => writeSafetensors(tensors as Record<string, TensorToWrite>)) as LossServerError
    t.ok(e instanceof LossServerError)
    t.match(e.message, msg)
  }
})
