// float16 / bfloat16 conversion against a straightforward reference: the nearest value on
// the dtype's grid, computed in float64 arithmetic, ties to even (IEEE 754 §4.3.1).
import t from 'tap'
import {
  bf16BitsToF32, bfloat16ToFloat32Bulk, f16BitsToF32, f32BitsToBf16, f32BitsToF16,
  float16ToFloat32Bulk, float32ToBfloat16Bulk, float32ToFloat16Bulk, roundToBfloat16, roundToFloat16
} from '../../src/wire/half.ts'
import { Prng } from '../../src/tasks/prng.ts'

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)
const floatOf = (bits: number): number => { u32[0] = bits; return f32[0] }
const bitsOf = (x: number): number => { f32[0] = x; return u32[0] }

/** Nearest value with `mant` stored bits, exponent >= minExp (subnormals below), overflow to Inf. */
function reference (v: number, mant: number, minExp: number, maxFinite: number): number {
  if (Number.isNaN(v) || !Number.isFinite(v) || v === 0) return v
  const a = Math.abs(v)
  let e = Math.floor(Math.log2(a))
  if (2 ** e > a) e--
  if (2 ** (e + 1) <= a) e++
  e = Math.max(e, minExp)
  const ulp = 2 ** (e - mant)
  const q = a / ulp
  let r = Math.floor(q)
  const frac = q - r
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++
  let res = r * ulp
  if (res > maxFinite) res = Infinity
  return v < 0 ? -res : res
}
const refF16 = (v: number): number => reference(v, 10, -14, 65504)
const refBf16 = (v: number): number => reference(v, 7, -126, (2 - 2 ** -7) * 2 ** 127)

function same (a: number, b: number): boolean { return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)) }

function randomBits (n: number, seed: number): Uint32Array {
  const rng = new Prng(seed)
  const out = new Uint32Array(n)
  for (let i = 0; i < n; i++) out[i] = rng.nextUint32()
  return out
}

t.test('float16 -> float32 -> float16 is the identity on all 65536 bit patterns (NaN payloads too)', async t => {
  let bad = -1
  for (let h = 0; h < 65536 && bad < 0; h++) if (f32BitsToF16(f16BitsToF32(h)) !== h) bad = h
  t.equal(bad, -1)
  t.equal(floatOf(f16BitsToF32(0x0001)), 2 ** -24, 'smallest subnormal')
  t.equal(floatOf(f16BitsToF32(0x03ff)), 1023 * 2 ** -24, 'largest subnormal')
  t.equal(floatOf(f16BitsToF32(0x0400)), 2 ** -14, 'smallest normal')
  t.equal(floatOf(f16BitsToF32(0x7bff)), 65504, 'max finite')
  t.equal(floatOf(f16BitsToF32(0xfbff)), -65504, 'min finite')
  t.ok(Object.is(floatOf(f16BitsToF32(0x8000)), -0), '-0')
  t.equal(floatOf(f16BitsToF32(0x7c00)), Infinity)
  t.equal(floatOf(f16BitsToF32(0xfc00)), -Infinity)
  t.ok(Number.isNaN(floatOf(f16BitsToF32(0x7e00))))
  t.ok(Number.isNaN(floatOf(f16BitsToF32(0x7c01))), 'signalling NaN stays NaN')
})

t.test('float32 -> float16 rounds like the reference', async t => {
  const specials = [0, -0, 1, -1, 65504, -65504, 65519.99, 65520, -65520, 65536, 1e10, 2 ** -14, 2 ** -24, 2 ** -25, 2 ** -25 * 1.5, 2 ** -26, 1e-45, -1e-45, 3.4028234663852886e38, 1 / 3, Math.PI, Infinity, -Infinity, NaN]
  for (const v of specials) {
    const x = Math.fround(v)
    t.ok(same(roundToFloat16(x), refF16(x)), `${x} -> ${roundToFloat16(x)}, reference ${refF16(x)}`)
  }
  // ties: the float32 midpoint between neighbouring float16 values goes to the even one
  let tieBad = 0
  let ties = 0
  for (let h = 0; h < 0x7bff; h += 7) {
    for (const sign of [0, 0x8000]) {
      const lo = floatOf(f16BitsToF32(h | sign))
      const hi = floatOf(f16BitsToF32((h + 1) | sign))
      const mid = (lo + hi) / 2
      if (Math.fround(mid) !== mid) continue
      ties++
      const want = (h & 1) === 0 ? lo : hi
      if (!same(roundToFloat16(mid), want) || !same(refF16(mid), want)) tieBad++
    }
  }
  t.ok(ties > 8000, `${ties} ties checked`)
  t.equal(tieBad, 0, 'ties go to even')
  t.equal(roundToFloat16(65520), Infinity, 'the tie above max finite rounds to Inf (even)')
  t.equal(roundToFloat16(2 ** -25), 0, 'half the smallest subnormal ties to 0 (even)')
  t.equal(roundToFloat16(3 * 2 ** -25), 2 * 2 ** -24, '1.5 smallest subnormals ties to 2 (even)')
  // random float32 bit patterns (every exponent range, NaNs included)
  const bits = randomBits(200_000, 1)
  let bad = 0
  for (const b of bits) if (!same(floatOf(f16BitsToF32(f32BitsToF16(b))), refF16(floatOf(b)))) bad++
  t.equal(bad, 0, 'random patterns')
  // values near the float16 range, where the interesting rounding happens
  const rng = new Prng(2)
  bad = 0
  for (let i = 0; i < 200_000; i++) {
    const x = Math.fround((rng.float() - 0.5) * 2 ** rng.int(46) / 2 ** 28)
    if (!same(roundToFloat16(x), refF16(x))) bad++
  }
  t.equal(bad, 0, 'values of float16 magnitude')
})

t.test('float32 <-> bfloat16 rounds like the reference; NaN stays NaN', async t => {
  let rt = 0
  for (let h = 0; h < 65536; h++) {
    const back = f32BitsToBf16(bf16BitsToF32(h))
    // NaN patterns come back quiet (0x40 set), still NaN
    if (back !== h && !(Number.isNaN(floatOf(bf16BitsToF32(h))) && back === (h | 0x40))) rt++
  }
  t.equal(rt, 0, 'bfloat16 -> float32 -> bfloat16 is the identity (NaNs: made quiet)')
  const specials = [0, -0, 1, -1, 3.3895313892515355e38, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, 1.1754943508222875e-38, 1 / 3, Infinity, -Infinity]
  for (const v of specials) {
    const x = Math.fround(v)
    t.ok(same(roundToBfloat16(x), refBf16(x)), `${x} -> ${roundToBfloat16(x)}, reference ${refBf16(x)}`)
  }
  t.equal(roundToBfloat16(3.4028234663852886e38), Infinity, 'float32 max rounds up to Inf')
  for (const nan of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff, 0xffffffff]) {
    t.ok(Number.isNaN(floatOf(bf16BitsToF32(f32BitsToBf16(nan)))), `NaN 0x${nan.toString(16)} stays NaN`)
  }
  let ties = 0
  let tieBad = 0
  for (let h = 0; h < 0x7f7f; h += 3) {
    const lo = floatOf(bf16BitsToF32(h))
    const hi = floatOf(bf16BitsToF32(h + 1))
    const mid = (lo + hi) / 2
    if (Math.fround(mid) !== mid) continue
    ties++
    if (!same(roundToBfloat16(mid), (h & 1) === 0 ? lo : hi)) tieBad++
  }
  t.ok(ties > 10000, `${ties} ties checked`)
  t.equal(tieBad, 0, 'ties go to even')
  const bits = randomBits(200_000, 3)
  let bad = 0
  for (const b of bits) if (!same(floatOf(bf16BitsToF32(f32BitsToBf16(b))), refBf16(floatOf(b)))) bad++
  t.equal(bad, 0, 'random patterns')
})

t.test('bulk conversions equal the scalar ones bit for bit', async t => {
  const bits = randomBits(1 << 18, 4)
  // a good share of normal-range float16 values, the fast path
  const rng = new Prng(5)
  for (let i = 0; i < bits.length; i += 2) bits[i] = bitsOf((rng.float() - 0.5) * 1000)
  const h = new Uint16Array(bits.length)
  float32ToFloat16Bulk(bits, h)
  const b = new Uint16Array(bits.length)
  float32ToBfloat16Bulk(bits, b)
  let bad = 0
  for (let i = 0; i < bits.length; i++) if (h[i] !== f32BitsToF16(bits[i]) || b[i] !== f32BitsToBf16(bits[i])) bad++
  t.equal(bad, 0, 'narrowing')
  const all = new Uint16Array(65536).map((_, i) => i)
  const w1 = new Uint32Array(65536)
  const w2 = new Uint32Array(65536)
  float16ToFloat32Bulk(all, w1)
  bfloat16ToFloat32Bulk(all, w2)
  bad = 0
  for (let i = 0; i < 65536; i++) if (w1[i] !== f16BitsToF32(i) || w2[i] !== bf16BitsToF32(i)) bad++
  t.equal(bad, 0, 'widening')
  // the two-at-a-time path and the one-at-a-time path: odd lengths, offsets not 4-aligned
  for (const [off, len] of [[0, 7], [1, 8], [1, 7], [3, 1], [2, 0]]) {
    const part = all.subarray(0x3c00 + off, 0x3c00 + off + len)
    const a = new Uint32Array(len)
    const b = new Uint32Array(len)
    float16ToFloat32Bulk(part, a)
    bfloat16ToFloat32Bulk(part, b)
    t.same([...a], [...part].map(f16BitsToF32), `float16 widening at element offset ${off}, length ${len}`)
    t.same([...b], [...part].map(bf16BitsToF32), `bfloat16 widening at element offset ${off}, length ${len}`)
  }
})
