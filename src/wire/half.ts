// float32 <-> float16 (IEEE 754 binary16) and float32 <-> bfloat16, on bit patterns.
// Narrowing rounds to nearest, ties to even (IEEE 754 default, as NumPy's astype and
// PyTorch's .to() do), keeps subnormals, signed zeros and infinities, and keeps NaN a NaN.
// Bulk versions work on Uint32Array views of float32 memory so NaN payloads survive
// (a Float32Array read goes through a JS double, which may canonicalise NaN).
// Method: F. Giesen, "float->half variants" (2016), float_to_half_fast3_rtne for the normal
// range; the rare subnormal / overflow / NaN cases take the exact scalar path.

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** float32 bit pattern -> float16 bit pattern, round to nearest even. */
export function f32BitsToF16 (x: number): number {
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  const mant = x & 0x7fffff
  if (exp === 0xff) {
    // Inf stays Inf; NaN keeps its top 10 payload bits, or becomes the quiet NaN if they are all 0
    if (mant === 0) return sign | 0x7c00
    const m = mant >>> 13
    return sign | 0x7c00 | (m === 0 ? 0x200 : m)
  }
  const e = exp - 112 // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00 // |x| >= 65536: overflow to Inf
  if (e <= 0) {
    // float16 subnormal: value = m * 2^-24, m = full >> (14 - e); below 2^-25 everything rounds to 0
    if (e < -10) return sign
    const full = mant | 0x800000
    const s = 14 - e
    let m = full >>> s
    const rem = full & ((1 << s) - 1)
    const half = 1 << (s - 1)
    if (rem > half || (rem === half && (m & 1) === 1)) m++ // may carry into the smallest normal, which is right
    return sign | m
  }
  let h = sign | (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++ // a carry may reach Inf (>= 65520), which is right
  return h
}

/** float16 bit pattern -> float32 bit pattern (exact). */
export function f16BitsToF32 (h: number): number {
  const sign = (h & 0x8000) << 16
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0
  if (mant === 0) return sign >>> 0
  // subnormal: normalise the mantissa
  let e = 113
  let m = mant
  while ((m & 0x400) === 0) { m <<= 1; e-- }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0
}

/** float32 bit pattern -> bfloat16 bit pattern, round to nearest even; NaN stays NaN (quiet). */
export function f32BitsToBf16 (x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff
  return ((x >>> 0) + 0x7fff + ((x >>> 16) & 1)) >>> 16
}

/** bfloat16 bit pattern -> float32 bit pattern (exact). */
export function bf16BitsToF32 (h: number): number {
  return (h << 16) >>> 0
}

function bitsOf (x: number): number { f32[0] = x; return u32[0] }
function floatOf (bits: number): number { u32[0] = bits; return f32[0] }

/** The float16 value nearest to x (after x is rounded to float32, as on the wire). */
export function roundToFloat16 (x: number): number { return floatOf(f16BitsToF32(f32BitsToF16(bitsOf(x)))) }
/** The bfloat16 value nearest to x (after x is rounded to float32, as on the wire). */
export function roundToBfloat16 (x: number): number { return floatOf(bf16BitsToF32(f32BitsToBf16(bitsOf(x)))) }

// float16 -> float32 through a 65536-entry table (256 KiB), built on first use.
let F16_TO_F32: Uint32Array | undefined
function f16Table (): Uint32Array {
  if (F16_TO_F32) return F16_TO_F32
  const t = new Uint32Array(65536)
  for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32(h)
  F16_TO_F32 = t
  return t
}

/** dst[i] = float32 of the float16 bits src[i]; dst is float32 bits (a Uint32Array view). */
export function float16ToFloat32Bulk (src: Uint16Array, dst: Uint32Array): void {
  const t = f16Table()
  const n = src.length
  let i = 0
  if (src.byteOffset % 4 === 0) {
    // two elements per 32-bit load: about 1.6x faster than one 16-bit load each
    const w = new Uint32Array(src.buffer, src.byteOffset, n >>> 1)
    for (let k = 0; k < w.length; k++, i += 2) { const x = w[k]; dst[i] = t[x & 0xffff]; dst[i + 1] = t[x >>> 16] }
  }
  for (; i < n; i++) dst[i] = t[src[i]]
}

/**
 * dst[i] = float16 bits of the float32 bits src[i], round to nearest even. The normal
 * float16 range [2^-14, 65536) is one unsigned compare and integer arithmetic written out in
 * the loop (rebias, add half an ulp minus one plus the lowest kept bit for ties to even,
 * truncate; a carry into the exponent is correct); the rest takes the exact scalar path.
 * Two results per 32-bit store where dst is 4-byte aligned: fewer stores; on the loaded 2-core
 * box 0.6-0.8 GB/s of float16 out vs 0.5-0.7 before (CPU time, best of 5; noisy under load 8-14).
 */
export function float32ToFloat16Bulk (src: Uint32Array, dst: Uint16Array): void {
  const n = src.length
  let i = 0
  if (dst.byteOffset % 4 === 0) {
    const w = new Uint32Array(dst.buffer, dst.byteOffset, n >>> 1)
    for (let k = 0; k < w.length; k++, i += 2) {
      const x = src[i]
      const y = src[i + 1]
      const a = x & 0x7fffffff
      const b = y & 0x7fffffff
      const lo = (a - 0x38800000) >>> 0 < 0x0f000000 ? ((a - 0x37fff001 + ((a >>> 13) & 1)) >>> 13) | ((x >>> 16) & 0x8000) : f32BitsToF16(x)
      const hi = (b - 0x38800000) >>> 0 < 0x0f000000 ? ((b - 0x37fff001 + ((b >>> 13) & 1)) >>> 13) | ((y >>> 16) & 0x8000) : f32BitsToF16(y)
      w[k] = lo | (hi << 16)
    }
  }
  for (; i < n; i++) {
    const x = src[i]
    const a = x & 0x7fffffff
    dst[i] = (a - 0x38800000) >>> 0 < 0x0f000000 ? ((a - 0x37fff001 + ((a >>> 13) & 1)) >>> 13) | ((x >>> 16) & 0x8000) : f32BitsToF16(x)
  }
}

/** dst[i] = float32 bits of the bfloat16 bits src[i]. */
export function bfloat16ToFloat32Bulk (src: Uint16Array, dst: Uint32Array): void {
  const n = src.length
  let i = 0
  if (src.byteOffset % 4 === 0) {
    const w = new Uint32Array(src.buffer, src.byteOffset, n >>> 1)
    for (let k = 0; k < w.length; k++, i += 2) { const x = w[k]; dst[i] = x << 16; dst[i + 1] = x & 0xffff0000 }
  }
  for (; i < n; i++) dst[i] = src[i] << 16
}

/** dst[i] = bfloat16 bits of the float32 bits src[i], round to nearest even; NaN stays a (quiet) NaN. Paired stores as above. */
export function float32ToBfloat16Bulk (src: Uint32Array, dst: Uint16Array): void {
  const n = src.length
  let i = 0
  if (dst.byteOffset % 4 === 0) {
    const w = new Uint32Array(dst.buffer, dst.byteOffset, n >>> 1)
    for (let k = 0; k < w.length; k++, i += 2) {
      const x = src[i]
      const y = src[i + 1]
      const lo = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16
      const hi = (y & 0x7fffffff) > 0x7f800000 ? (y >>> 16) | 0x40 : (y + 0x7fff + ((y >>> 16) & 1)) >>> 16
      w[k] = (lo & 0xffff) | (hi << 16)
    }
  }
  for (; i < n; i++) {
    const x = src[i]
    dst[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16
  }
}
