// The one msgpack setup: whatever the bytes, decode returns a plain value or throws
// invalid_body (never a RangeError, a stack overflow, a Set or a BigInt), and keys never
// reach a prototype.
import t, { type Test } from 'tap'
import { Packr } from 'msgpackr'
import { LossServerError } from '../../src/errors.ts'
import { MAX_DEPTH, decode, encode } from '../../src/wire/msgpack.ts'
import { Prng } from '../../src/tasks/prng.ts'

function invalidBody (t: Test, bytes: Uint8Array, re: RegExp, what: string): void {
  try {
    decode(bytes)
    t.fail(`${what}: decoded`)
  } catch (e) {
    t.ok(e instanceof LossServerError && e.code === 'invalid_body', `${what}: invalid_body`)
    t.match((e as Error).message, /^malformed msgpack: /, `${what}: says malformed msgpack`)
    t.match((e as Error).message, re, `${what}: ${(e as Error).message}`)
  }
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex')

t.test('round trip of a request-shaped value', async t => {
  const data = new Float32Array([1, 2, 3])
  const value = {
    config: { comparisons: '00, 11', tclip: 10.5, bidirectional: true, none: null },
    inputs: { anchor: [{ dtype: 'float32', shape: [3], data: new Uint8Array(data.buffer) }] },
    options: { seed: 4294967295, big: 2 ** 40, neg: -(2 ** 40), small: -3, s: 'héllo ✓' }
  }
  const out = decode(encode(value)) as any
  t.same(out.config, value.config)
  t.same(out.options, value.options)
  t.ok(out.inputs.anchor[0].data instanceof Uint8Array)
  t.same([...new Float32Array(new Uint8Array(out.inputs.anchor[0].data).buffer)], [1, 2, 3])
  t.equal(Object.getPrototypeOf(out), Object.prototype, 'maps decode as plain objects')
})

t.test('bin decodes as a view into the input, not a copy', async t => {
  const body = Buffer.from(encode({ d: new Uint8Array([9, 8, 7, 6]) }))
  const out = decode(body) as { d: Uint8Array }
  t.equal(out.d.buffer, body.buffer)
  body[body.length - 1] = 42
  t.equal(out.d[3], 42)
})

t.test('encode: undefined like JSON, typed arrays as bin, large values sized once', async t => {
  const out = decode(encode({ a: undefined, b: [undefined, 1], c: 2 })) as Record<string, unknown>
  t.same(out, { b: [null, 1], c: 2 }, 'undefined fields dropped, undefined elements nil')
  t.notOk('a' in out)
  const f = new Float32Array(2 << 20).fill(1.5)
  const big = encode({ grads: { dtype: 'float32', shape: [f.length], data: new Uint8Array(f.buffer) } })
  t.ok(big.buffer.byteLength < f.byteLength + (1 << 16), `the ${big.length}-byte result sits in a buffer of ${big.buffer.byteLength}`)
  const back = decode(big) as { grads: { data: Uint8Array } }
  t.equal(back.grads.data.byteLength, f.byteLength)
  t.equal(new Float32Array(back.grads.data.slice().buffer)[12345], 1.5)
  const small = encode({ ok: true })
  t.ok(small.buffer.byteLength < 1 << 20, 'a later small result does not share the big buffer')
  t.same(decode(small), { ok: true })
})

t.test('malformed, truncated and trailing bytes are invalid_body', async t => {
  invalidBody(t, new Uint8Array(0), /empty/, 'empty')
  invalidBody(t, hex('92 01'), /truncated/, 'array missing an item')
  invalidBody(t, hex('82 a1 61 01'), /truncated/, 'map missing an entry')
  invalidBody(t, hex('a5 61 62'), /truncated.*string/, 'short string')
  invalidBody(t, hex('c4 10 00 00'), /truncated.*bin/, 'short bin 8')
  invalidBody(t, hex('c6 ff ff ff ff 00'), /truncated.*bin/, 'bin 32 claiming 4 GiB')
  invalidBody(t, hex('dd ff ff ff ff'), /claims 4294967295 items/, 'array 32 claiming 2^32 items')
  invalidBody(t, hex('df 7f ff ff ff 01'), /claims 2147483647 entries/, 'map 32 claiming 2^31 entries')
  invalidBody(t, hex('cb 00 00'), /truncated.*float 64/, 'short float64')
  invalidBody(t, hex('c1'), /0xc1/, 'never-used byte')
  invalidBody(t, hex('80 00'), /1 trailing bytes/, 'trailing garbage')
  invalidBody(t, Buffer.concat([Buffer.from(encode({ a: 1 })), hex('ff ff ff')]), /3 trailing bytes/, 'trailing garbage after a map')
  invalidBody(t, hex('81 01 02'), /map key at byte 1 is not a string/, 'integer key')
  invalidBody(t, hex('81 c0 02'), /not a string/, 'nil key')
  // every proper prefix of a valid body is truncated
  const whole = Buffer.from(encode({ inputs: { z: { dtype: 'float16', shape: [2, 2], data: new Uint8Array(8) } }, options: { seed: 7, s: 'x'.repeat(40) } }))
  let bad = 0
  for (let i = 0; i < whole.length; i++) {
    try { decode(whole.subarray(0, i)); bad++ } catch (e) { if (!(e instanceof LossServerError) || e.code !== 'invalid_body') bad++ }
  }
  t.equal(bad, 0, `all ${whole.length} truncations are invalid_body`)
})

t.test('extension types (timestamps, msgpackr records, sets, typed arrays) are refused', async t => {
  invalidBody(t, hex('d6 ff 00 00 00 00'), /extension type 0xd6/, 'timestamp 32')
  // what a msgpackr client with its extensions on would send
  const rich = new Packr({ structuredClone: true, moreTypes: true })
  invalidBody(t, Buffer.from(rich.pack(new Set([1]))), /extension/, 'msgpackr Set')
  invalidBody(t, Buffer.from(rich.pack(new Date(0))), /extension/, 'Date')
  invalidBody(t, Buffer.from(rich.pack(/x/)), /extension/, 'RegExp')
  invalidBody(t, Buffer.from(rich.pack(new Float32Array(2))), /extension/, 'msgpackr typed array')
  const cyc: Record<string, unknown> = {}
  cyc.self = cyc
  invalidBody(t, Buffer.from(rich.pack(cyc)), /extension/, 'structured-clone reference')
  invalidBody(t, Buffer.from(new Packr({ useRecords: true }).pack([{ a: 1 }, { a: 2 }])), /extension type 0xd4/, 'msgpackr records')
  invalidBody(t, hex('c7 03 74 00 01 02'), /extension type 0xc7/, 'ext 8')
})

t.test('64-bit integers: safe ones are numbers, others are refused (no BigInt)', async t => {
  t.equal(decode(hex('cf 00 1f ff ff ff ff ff ff')), 2 ** 53 - 1)
  t.equal(decode(hex('d3 ff e0 00 00 00 00 00 01')), -(2 ** 53 - 1))
  t.equal(decode(hex('cf 00 00 00 00 ff ff ff ff')), 4294967295, 'a uint32 seed written as uint64')
  invalidBody(t, hex('cf 00 20 00 00 00 00 00 00'), /beyond/, 'uint64 2^53')
  invalidBody(t, hex('d3 80 00 00 00 00 00 00 00'), /beyond/, 'int64 min')
})

t.test('nesting is limited without a stack overflow', async t => {
  const nested = (depth: number): Buffer => Buffer.concat([Buffer.alloc(depth - 1, 0x91), hex('90')])
  t.same(decode(nested(3)), [[[]]])
  t.doesNotThrow(() => decode(nested(MAX_DEPTH)), `depth ${MAX_DEPTH} is accepted`)
  invalidBody(t, nested(MAX_DEPTH + 1), /nesting deeper than 64/, `depth ${MAX_DEPTH + 1}`)
  invalidBody(t, nested(1_000_000), /nesting deeper/, 'a million levels')
  // maps nest too: {"a": {"a": ...}}
  const maps = Buffer.concat([Buffer.from('81a161'.repeat(200_000), 'hex'), hex('c0')])
  invalidBody(t, maps, /nesting deeper/, 'deep maps')
  t.doesNotThrow(() => decode(nested(10), { maxDepth: 10 }))
  t.same(decode(Buffer.concat([Buffer.from('81a161'.repeat(3), 'hex'), hex('c0')])), { a: { a: { a: null } } })
})

t.test('__proto__ and constructor keys never reach a prototype', async t => {
  // {"__proto__": {"polluted": 1}} as raw bytes (a JS object literal would not carry the key)
  const bytes = hex('81 a9' + Buffer.from('__proto__').toString('hex') + '81 a8' + Buffer.from('polluted').toString('hex') + '01')
  const out = decode(bytes) as Record<string, unknown>
  t.equal(Object.getPrototypeOf(out), Object.prototype, 'the decoded object keeps the plain prototype')
  t.equal((Object.prototype as Record<string, unknown>).polluted, undefined, 'Object.prototype is not polluted')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(out.polluted, undefined, 'nothing inherited through the key')
  t.notOk(Object.hasOwn(out, '__proto__'), 'no own __proto__ key that a later merge could misuse')
  // nested, and with constructor / prototype keys
  const nested = decode(encode({ config: JSON.parse('{"constructor": {"prototype": {"polluted": 2}}, "toString": 3}') })) as { config: Record<string, unknown> }
  t.same(nested.config.constructor, { prototype: { polluted: 2 } }, 'constructor is an own property')
  t.equal(nested.config.toString, 3)
  t.equal(Object.getPrototypeOf(nested.config), Object.prototype)
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal({}.constructor, Object)
})

t.test('random bytes: a value or invalid_body, never anything else', async t => {
  const rng = new Prng(11)
  const seedBody = Buffer.from(encode({ inputs: { a: [{ dtype: 'float32', shape: [2], data: new Uint8Array(8) }] }, options: { seed: 1, x: [1.5, -2, 'y', null, true] } }))
  let other = 0
  let ok = 0
  for (let i = 0; i < 3000; i++) {
    let bytes: Buffer
    if (i % 2 === 0) {
      bytes = Buffer.alloc(1 + rng.int(64))
      for (let j = 0; j < bytes.length; j++) bytes[j] = rng.int(256)
    } else {
      bytes = Buffer.from(seedBody) // mutate a valid body
      for (let k = 0; k < 1 + rng.int(4); k++) bytes[rng.int(bytes.length)] = rng.int(256)
    }
    try { decode(bytes); ok++ } catch (e) { if (!(e instanceof LossServerError) || e.code !== 'invalid_body') { other++; t.comment(String(e)) } }
  }
  t.equal(other, 0, `no other error (${ok} of 3000 decoded)`)
})
