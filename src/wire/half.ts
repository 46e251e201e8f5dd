// float32 <-> float16 (IEEE 754 binary16) and float32 <-> bfloat16: the module the rest of
// the code imports. Narrowing rounds to nearest, ties to even (IEEE 754 default, as NumPy's
// astype and PyTorch's .to() do), keeps subnormals, signed zeros and infinities, and keeps
// NaN a NaN; widening is exact.
//   half-scalar.ts      one value at a time, on bit patterns: the specification
//   half-wasm.ts        bulk, WebAssembly SIMD kernels (half-wasm-module.ts): the fast path
//   half-js.ts          bulk, plain JavaScript: short arrays and engines without wasm SIMD
// All three agree bit for bit (test/wire/half.test.ts checks every float16 pattern and a
// sweep of float32 ones, NaN payloads included).
import { bfloat16ToFloat32Js, float16ToFloat32Js, float32ToBfloat16Js, float32ToFloat16Js } from './half-js.ts'
import { bfloat16ToFloat32Wasm, float16ToFloat32Wasm, float32ToBfloat16Wasm, float32ToFloat16Wasm, wasmAvailable } from './half-wasm.ts'

export { bf16BitsToF32, f16BitsToF32, f32BitsToBf16, f32BitsToF16, roundToBfloat16, roundToFloat16 } from './half-scalar.ts'
export { wasmAvailable as halfWasmAvailable } from './half-wasm.ts'

/**
 * Below this many elements the JavaScript loops: the wasm path's fixed cost (a call and two
 * chunk copies) is not worth it, and most such tensors are small request parts anyway.
 */
const WASM_MIN = 256

/** dst[i] = float32 bits of the float16 bits src[i]; dst is float32 memory seen as a Uint32Array. */
export function float16ToFloat32Bulk (src: Uint16Array, dst: Uint32Array): void {
  if (wasmAvailable && src.length >= WASM_MIN) float16ToFloat32Wasm(src, dst)
  else float16ToFloat32Js(src, dst)
}

/** dst[i] = float16 bits of the float32 bits src[i], round to nearest even. */
export function float32ToFloat16Bulk (src: Uint32Array, dst: Uint16Array): void {
  if (wasmAvailable && src.length >= WASM_MIN) float32ToFloat16Wasm(src, dst)
  else float32ToFloat16Js(src, dst)
}

/** dst[i] = float32 bits of the bfloat16 bits src[i]. */
export function bfloat16ToFloat32Bulk (src: Uint16Array, dst: Uint32Array): void {
  if (wasmAvailable && src.length >= WASM_MIN) bfloat16ToFloat32Wasm(src, dst)
  else bfloat16ToFloat32Js(src, dst)
}

/** dst[i] = bfloat16 bits of the float32 bits src[i], round to nearest even; NaN stays a (quiet) NaN. */
export function float32ToBfloat16Bulk (src: Uint32Array, dst: Uint16Array): void {
  if (wasmAvailable && src.length >= WASM_MIN) float32ToBfloat16Wasm(src, dst)
  else float32ToBfloat16Js(src, dst)
}
