// The JavaScript bulk float16/bfloat16 conversions: the fallback where WebAssembly SIMD is
// unavailable (half.ts picks), and the short-array path. They work on Uint32Array views of
// float32 memory so NaN payloads survive (a Float32Array read goes through a JS double, which
// may canonicalise NaN). Narrowing: F. Giesen, "float->half variants" (2016),
// float_to_half_fast3_rtne for the normal range; the rare subnormal / overflow / NaN cases
// take the exact scalar path of half-scalar.ts.
import { f16BitsToF32, f32BitsToF16 } from './half-scalar.ts'

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
export function float16ToFloat32Js (src: Uint16Array, dst: Uint32Array): void {
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
export function float32ToFloat16Js (src: Uint32Array, dst: Uint16Array): void {
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
export function bfloat16ToFloat32Js (src: Uint16Array, dst: Uint32Array): void {
  const n = src.length
  let i = 0
  if (src.byteOffset % 4 === 0) {
    const w = new Uint32Array(src.buffer, src.byteOffset, n >>> 1)
    for (let k = 0; k < w.length; k++, i += 2) { const x = w[k]; dst[i] = x << 16; dst[i + 1] = x & 0xffff0000 }
  }
  for (; i < n; i++) dst[i] = src[i] << 16
}

/** dst[i] = bfloat16 bits of the float32 bits src[i], round to nearest even; NaN stays a (quiet) NaN. Paired stores as above. */
export function float32ToBfloat16Js (src: Uint32Array, dst: Uint16Array): void {
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
