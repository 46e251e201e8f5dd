// float32 <-> float16 (IEEE 754 binary16) and float32 <-> bfloat16, on bit patterns.
// Narrowing rounds to nearest, ties to even (IEEE 754 default, as NumPy's astype and
// PyTorch's .to() do), keeps subnormals, signed zeros and infinities, and keeps NaN a NaN.
// These scalar versions are the specification the bulk ones (half-js.ts, half-wasm.ts) are
// tested against bit for bit; half.ts is the module the rest of the code imports.

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
