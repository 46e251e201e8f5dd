// float16 / bfloat16 conversion against a straightforward reference: the nearest value on
// the dtype's grid, computed in float64 arithmetic, ties to even (IEEE 754 §4.3.1).
import t from 'tap'
import {
  bf16BitsToF32, bfloat16ToFloat32Bulk, f16BitsToF32, f32BitsToBf16, f32BitsToF16,
  float16ToFloat32Bulk, float32ToBfloat16Bulk, float32ToFloat16Bulk, roundToBfloat16, roundToFloat16
} from '../../src/wire/half.ts'
import { bfloat16ToFloat32Js, float16ToFloat32Js, float32ToBfloat16Js, float32ToFloat16Js } from '../../src/wire/half-js.ts'
import { CHUNK, bfloat16ToFloat32Wasm, float16ToFloat32Wasm, float32ToBfloat16Wasm, float32ToFloat16Wasm, wasmAvailable } from '../../src/wire/half-wasm.ts'
import { halfModuleBytes } from '../../src/wire/half-wasm-module.ts'
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

// ---- every bulk implementation against the scalar specification ----------------------------

type Widen = (src: Uint16Array, dst: Uint32Array) => void
type Narrow = (src: Uint32Array, dst: Uint16Array) => void
interface Impl { name: string, f16ToF32: Widen, f32ToF16: Narrow, bf16ToF32: Widen, f32ToBf16: Narrow }
const IMPLS: Impl[] = [
  { name: 'half.ts (what the codec calls)', f16ToF32: float16ToFloat32Bulk, f32ToF16: float32ToFloat16Bulk, bf16ToF32: bfloat16ToFloat32Bulk, f32ToBf16: float32ToBfloat16Bulk },
  { name: 'JavaScript', f16ToF32: float16ToFloat32Js, f32ToF16: float32ToFloat16Js, bf16ToF32: bfloat16ToFloat32Js, f32ToBf16: float32ToBfloat16Js },
  { name: 'wasm SIMD', f16ToF32: float16ToFloat32Wasm, f32ToF16: float32ToFloat16Wasm, bf16ToF32: bfloat16ToFloat32Wasm, f32ToBf16: float32ToBfloat16Wasm }
]

/** The float16 value of bits h from its definition (IEEE 754 §3.4), in float64. */
function f16Value (h: number): number {
  const s = (h & 0x8000) !== 0 ? -1 : 1
  const e = (h >>> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 0x1f) return m === 0 ? s * Infinity : NaN
  return s * (e === 0 ? m * 2 ** -24 : 2 ** (e - 15) * (1 + m / 1024))
}

/**
 * float32 bit patterns where float16 rounding is decided: for every exponent from below the
 * float16 subnormals (2^-27) to past the overflow (2^18), every value of the bits float16
 * keeps, each with the dropped bits 0, 1, half - 1, half, half + 1 and all ones; both signs.
 * That is every float16 value, its neighbours' midpoints (the ties) and the float32 values
 * on either side of them. Plus the float32 subnormal and overflow edges.
 */
function roundingSweep (): Uint32Array {
  const out: number[] = []
  for (let exp = 100; exp <= 144; exp++) {
    // dropped bits: 13 for float16 normals (exp >= 113), more in the subnormal range
    const drop = Math.min(24, 13 + Math.max(0, 113 - exp))
    const kept = 23 - drop
    const half = 2 ** (drop - 1)
    const tails = [0, 1, half - 1, half, half + 1, 2 ** drop - 1].filter(x => x >= 0 && x < 2 ** drop)
    for (let k = 0; k < 2 ** Math.max(kept, 0); k++) {
      for (const tail of tails) {
        const bits = (exp << 23) | (k * 2 ** drop + tail)
        out.push(bits >>> 0, (bits | 0x80000000) >>> 0)
      }
    }
  }
  for (const b of [0, 1, 2, 0x7fffff, 0x800000, 0x800001, 0x7f7fffff, 0x7f800000, 0x477fefff, 0x477ff000, 0x477ff001, 0x477fe000]) out.push(b, (b | 0x80000000) >>> 0)
  return Uint32Array.from(out)
}

/** NaN patterns: quiet, signalling, payloads only below the kept 10 (or 7) bits, all ones. */
const NANS = [0x7fc00000, 0x7f800001, 0x7f801fff, 0x7f802000, 0x7fa00000, 0x7fbfffff, 0x7fffffff, 0x7f80ffff, 0x7f810000]
  .flatMap(b => [b, (b | 0x80000000) >>> 0])

function firstMismatch (a: ArrayLike<number>, b: ArrayLike<number>): string {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `index ${i}: ${a[i].toString(16)} != ${b[i].toString(16)}`
  return a.length === b.length ? 'none' : `lengths ${a.length} != ${b.length}`
}

t.test('WebAssembly SIMD is available on this Node, so the fast path is the one tested and used', async t => {
  t.ok(WebAssembly.validate(halfModuleBytes()), 'the assembled module validates')
  t.equal(wasmAvailable, true)
})

t.test('widening: all 65536 float16 and bfloat16 bit patterns, every implementation, against the definition', async t => {
  const all = new Uint16Array(65536).map((_, i) => i)
  // the scalar specification against the float64 definition, NaN payloads kept in place
  let bad = 0
  for (let h = 0; h < 65536; h++) {
    const bits = f16BitsToF32(h)
    const v = floatOf(bits)
    const want = f16Value(h)
    if (Number.isNaN(want) ? !(Number.isNaN(v) && bits === ((((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0)) : !Object.is(v, want)) bad++
    if (bf16BitsToF32(h) !== (h << 16) >>> 0) bad++
  }
  t.equal(bad, 0, 'scalar = definition')
  const f16 = Uint32Array.from(all, f16BitsToF32)
  const bf16 = Uint32Array.from(all, bf16BitsToF32)
  for (const impl of IMPLS) {
    const a = new Uint32Array(65536)
    impl.f16ToF32(all, a)
    t.equal(firstMismatch(a, f16), 'none', `${impl.name}: float16`)
    const b = new Uint32Array(65536)
    impl.bf16ToF32(all, b)
    t.equal(firstMismatch(b, bf16), 'none', `${impl.name}: bfloat16`)
  }
})

t.test('narrowing: rounding boundaries, subnormal edges, overflow edge, NaNs, a stride through all 2^32 patterns', async t => {
  const sweep = roundingSweep()
  t.ok(sweep.length > 400_000, `${sweep.length} boundary patterns`)
  // the scalar specification against the float64 reference on the boundary patterns
  let bad = 0
  for (const b of sweep) if (!same(floatOf(f16BitsToF32(f32BitsToF16(b))), refF16(floatOf(b)))) bad++
  t.equal(bad, 0, 'scalar float16 = reference on the boundaries')
  bad = 0
  for (const b of sweep) if (!same(floatOf(bf16BitsToF32(f32BitsToBf16(b))), refBf16(floatOf(b)))) bad++
  t.equal(bad, 0, 'scalar bfloat16 = reference on the boundaries')
  // named edges, through every implementation below as well
  const edges: Array<[number, number, string]> = [
    [0x477fefff, 0x7bff, 'largest float32 below 65520 -> 65504'],
    [bitsOf(65520), 0x7c00, '65520 (the tie above 65504) -> Inf'],
    [bitsOf(65536), 0x7c00, '65536 -> Inf'],
    [bitsOf(2 ** -25), 0x0000, '2^-25 (half the smallest subnormal) ties to 0'],
    [bitsOf(2 ** -25) + 1, 0x0001, 'just above 2^-25 -> smallest subnormal'],
    [bitsOf(3 * 2 ** -25), 0x0002, '1.5 smallest subnormals ties to 2'],
    [bitsOf(2 ** -14 - 2 ** -25), 0x0400, 'tie between the largest subnormal and the smallest normal -> normal (even)'],
    [bitsOf(2 ** -14 - 2 ** -25) - 1, 0x03ff, 'just below that tie -> largest subnormal'],
    [0x00000001, 0x0000, 'smallest float32 subnormal -> 0'],
    [0x80000001, 0x8000, 'its negative -> -0'],
    [0x80000000, 0x8000, '-0 -> -0'],
    [bitsOf(1 + 2 ** -11), 0x3c00, '1 + half an ulp ties to 1 (even)'],
    [bitsOf(1 + 3 * 2 ** -11), 0x3c02, '1 + 1.5 ulp ties to 1 + 2 ulp (even)']
  ]
  const edgeBits = Uint32Array.from(edges, e => e[0])
  const all = Uint32Array.from([...sweep, ...NANS, ...edgeBits])
  // a stride through every float32 pattern (exponents, signs, NaNs alike)
  const stride = Uint32Array.from({ length: 2 ** 32 / 4093 }, (_, i) => (i * 4093 + 1234) >>> 0)
  const wantEdges = edges.map(e => e[1])
  for (const impl of IMPLS) {
    for (const [what, src] of [['boundaries + NaNs + edges', all], ['stride of 4093', stride]] as const) {
      const h = new Uint16Array(src.length)
      impl.f32ToF16(src, h)
      t.equal(firstMismatch(h, Array.from(src, f32BitsToF16)), 'none', `${impl.name}: float16, ${what}`)
      const b = new Uint16Array(src.length)
      impl.f32ToBf16(src, b)
      t.equal(firstMismatch(b, Array.from(src, f32BitsToBf16)), 'none', `${impl.name}: bfloat16, ${what}`)
    }
    const h = new Uint16Array(edgeBits.length)
    impl.f32ToF16(edgeBits, h)
    for (let i = 0; i < edges.length; i++) t.equal(h[i], wantEdges[i], `${impl.name}: ${edges[i][2]}`)
  }
  // NaN stays NaN, with the scalar rule's payload: top 10 bits kept, or the quiet bit alone
  for (const nan of NANS) {
    const m = (nan >>> 13) & 0x3ff
    t.equal(f32BitsToF16(nan), ((nan >>> 16) & 0x8000) | 0x7c00 | (m === 0 ? 0x200 : m), `NaN 0x${nan.toString(16)}`)
  }
})

t.test('chunked bulk paths: lengths around the chunk size, unaligned views, NaNs left in a chunk\'s tail', async t => {
  const rng = new Prng(7)
  for (const n of [0, 1, 7, 8, 9, 255, 256, 257, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 5]) {
    const src = new Uint32Array(n)
    for (let i = 0; i < n; i++) src[i] = i % 3 === 0 ? rng.nextUint32() : bitsOf((rng.float() - 0.5) * 2 ** (rng.int(40) - 25))
    for (const impl of IMPLS) {
      // dst a view at an odd 16-bit offset: not 4-byte aligned
      const h = new Uint16Array(n + 1).subarray(1)
      impl.f32ToF16(src, h)
      const back = new Uint32Array(n)
      impl.f16ToF32(h, back)
      t.equal(firstMismatch(h, Array.from(src, f32BitsToF16)), 'none', `${impl.name}: float16 out, n ${n}`)
      t.equal(firstMismatch(back, Array.from(h, f16BitsToF32)), 'none', `${impl.name}: float16 in, n ${n}`)
      const b = new Uint16Array(n + 1).subarray(1)
      impl.f32ToBf16(src, b)
      impl.bf16ToF32(b, back)
      t.equal(firstMismatch(b, Array.from(src, f32BitsToBf16)), 'none', `${impl.name}: bfloat16 out, n ${n}`)
      t.equal(firstMismatch(back, Array.from(b, bf16BitsToF32)), 'none', `${impl.name}: bfloat16 in, n ${n}`)
    }
  }
  // the wasm kernel works in steps of 8 and a short last chunk leaves stale lanes from the one
  // before: NaNs there raise a false alarm, which must not change the result
  const n = CHUNK + 5
  const src = new Uint32Array(n).fill(bitsOf(1.5))
  src.fill(0x7fc00001, 5, 8)
  src[CHUNK + 1] = 0xffa00000
  for (const impl of IMPLS) {
    const h = new Uint16Array(n)
    impl.f32ToF16(src, h)
    t.equal(firstMismatch(h, Array.from(src, f32BitsToF16)), 'none', `${impl.name}: stale NaN lanes`)
  }
})
