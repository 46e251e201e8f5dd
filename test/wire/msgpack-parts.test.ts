// encodeParts: a large value as a list of chunks whose concatenation is one msgpack value,
// every large bin a VIEW of the caller's memory (no copy) starting 4-byte aligned in the
// body, the rest byte-for-byte what encode() would say about it.
import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import { Unpackr } from 'msgpackr'
import { VIEW_BYTES, decode, encode, encodeParts } from '../../src/wire/msgpack.ts'

const join = (parts: Uint8Array[]): Buffer => Buffer.concat(parts)

function answer (pad: number, n: number): { value: Record<string, unknown>, grad: Float32Array } {
  const grad = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 3)
  const value = {
    loss: 1.25,
    terms: { 'nce_01': 0.5, odd: -0 },
    grads: {
      anchor: [
        { dtype: 'float32', shape: [n], data: new Uint8Array(grad.buffer) },
        { dtype: 'float32', shape: [1], data: new Uint8Array(4) } // small: through msgpackr
      ],
      z: { dtype: 'float16', shape: [2048 + pad], data: new Uint8Array(2 * (2048 + pad)).fill(7) }
    },
    meta: { backend: 'tensorflow', note: 'x'.repeat(pad), skipped: undefined, list: [1, undefined, 'é'] }
  }
  return { value, grad }
}

t.test('the parts decode to the same value as encode(), with aligned views of the big bins', async t => {
  for (let pad = 0; pad < 12; pad++) {
    const { value, grad } = answer(pad, VIEW_BYTES / 4 + pad)
    const { parts, byteLength } = encodeParts(value)
    const body = join(parts)
    t.equal(body.byteLength, byteLength, `pad ${pad}: byteLength is the sum of the parts`)
    const got = decode(body) as any
    t.ok(isDeepStrictEqual(got, decode(encode(value))), `pad ${pad}: same value as encode()`)
    // an independent reader agrees (the wider header formats are ordinary msgpack)
    t.ok(isDeepStrictEqual(new Unpackr({ mapsAsObjects: true, useRecords: false }).unpack(body), got), `pad ${pad}: msgpackr reads it alike`)
    const a = got.grads.anchor[0].data as Uint8Array
    t.equal(a.byteOffset % 4, 0, `pad ${pad}: float32 data at offset ${a.byteOffset}`)
    t.equal(got.grads.z.data.byteOffset % 4, 0, `pad ${pad}: float16 data at offset ${got.grads.z.data.byteOffset}`)
    t.same(new Float32Array(a.buffer, a.byteOffset, grad.length), grad)
    t.ok(parts.some(p => p.buffer === grad.buffer && p.byteOffset === 0 && p.byteLength === grad.byteLength), `pad ${pad}: the gradient goes out as a view of its own memory`)
    t.notOk('skipped' in got.meta, 'undefined fields are left out')
  }
})

t.test('a map with more than 15 entries and a long key still aligns its bin', async t => {
  const value: Record<string, unknown> = {}
  for (let i = 0; i < 20; i++) value[`k${i}`] = i
  const key = 'd'.repeat(40)
  value[key] = new Uint8Array(VIEW_BYTES + 3)
  for (let extra = 0; extra < 4; extra++) {
    const body = join(encodeParts({ s: 'y'.repeat(extra), m: value }).parts)
    const got = decode(body) as any
    t.equal(got.m[key].byteOffset % 4, 0, `offset ${got.m[key].byteOffset}`)
    t.equal(got.m.k19, 19)
  }
})

t.test('values without large bins are one msgpackr buffer, as encode() makes them', async t => {
  const value = { ok: true, n: [1, 2.5, null], s: 'hé' }
  const { parts } = encodeParts(value)
  t.equal(parts.length, 1)
  t.same(join(parts), encode(value))
})

t.test('encode() of a large value is one exact-size buffer with aligned bins', async t => {
  const f = new Float32Array(1 << 19).fill(2.5)
  const big = encode({ id: 7, grads: { z: { dtype: 'float32', shape: [f.length], data: new Uint8Array(f.buffer) } } })
  t.equal(big.buffer.byteLength, big.byteLength, 'no slack')
  const got = decode(big) as any
  t.equal(got.grads.z.data.byteOffset % 4, 0)
  t.equal(new Float32Array(got.grads.z.data.buffer, got.grads.z.data.byteOffset, 4)[3], 2.5)
})
