// Bulk float16/bfloat16 conversion through the WebAssembly SIMD kernels of half-wasm-module.ts.
// The caller's arrays are not wasm memory, so each call walks them in chunks that stay in the
// core's L2 cache: copy a chunk in (a memcpy), convert, copy it out (a memcpy). The copies
// cost little next to the conversion; main memory sees one read of src and one write of dst.
// Where WebAssembly SIMD is unavailable, wasmAvailable is false and half.ts uses half-js.ts.
// dst.length >= src.length (dst.set throws a RangeError otherwise); each thread that imports
// this has its own instance (256 KiB of wasm memory).
import { EXPORTS, PAGES, halfModuleBytes } from './half-wasm-module.ts'
import { f32BitsToBf16, f32BitsToF16 } from './half-scalar.ts'

type Kernel = (src: number, dst: number, n: number) => number

/**
 * Elements per chunk: 64 KiB in + 64 KiB out at most, inside a core's L2 (2 MiB here).
 * 4096, 8192 and 32768 measured no faster on the 2-core box.
 */
export const CHUNK = 16384
const IN = 0
const OUT = CHUNK * 4
if (OUT + CHUNK * 4 > PAGES * 65536) throw new Error('half-wasm: chunk does not fit the module memory')

interface Instance { memory: WebAssembly.Memory, k: Record<typeof EXPORTS[number], Kernel> }

function instantiate (): Instance | undefined {
  if (typeof WebAssembly !== 'object') return undefined
  const bytes = halfModuleBytes()
  // validate() is false on an engine without SIMD: a capability check, not an error
  if (!WebAssembly.validate(bytes)) return undefined
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes))
  const e = inst.exports as Record<string, unknown>
  return { memory: e.memory as WebAssembly.Memory, k: Object.fromEntries(EXPORTS.map(n => [n, e[n] as Kernel])) as Instance['k'] }
}

const inst = instantiate()

/** Whether the SIMD kernels run here (false: half.ts uses the JavaScript ones). */
export const wasmAvailable = inst !== undefined

// views of the module memory; its buffer never changes (the memory never grows)
const in16 = inst ? new Uint16Array(inst.memory.buffer, IN, CHUNK) : new Uint16Array(0)
const in32 = inst ? new Uint32Array(inst.memory.buffer, IN, CHUNK) : new Uint32Array(0)
const out16 = inst ? new Uint16Array(inst.memory.buffer, OUT, CHUNK) : new Uint16Array(0)
const out32 = inst ? new Uint32Array(inst.memory.buffer, OUT, CHUNK) : new Uint32Array(0)

function widen (k: Kernel, src: Uint16Array, dst: Uint32Array): void {
  const n = src.length
  for (let i = 0; i < n; i += CHUNK) {
    const c = Math.min(CHUNK, n - i)
    in16.set(src.subarray(i, i + c))
    k(IN, OUT, c)
    dst.set(c === CHUNK ? out32 : out32.subarray(0, c), i)
  }
}

/** `scalar` redoes the NaN lanes of a chunk where the kernel saw any (it gets them wrong). */
function narrow (k: Kernel, scalar: (bits: number) => number, src: Uint32Array, dst: Uint16Array): void {
  const n = src.length
  for (let i = 0; i < n; i += CHUNK) {
    const c = Math.min(CHUNK, n - i)
    in32.set(src.subarray(i, i + c))
    // lanes past c hold an earlier chunk's data, NaNs perhaps: a false alarm costs one scan
    if (k(IN, OUT, c) !== 0) {
      for (let j = 0; j < c; j++) if ((in32[j] & 0x7fffffff) > 0x7f800000) out16[j] = scalar(in32[j])
    }
    dst.set(c === CHUNK ? out16 : out16.subarray(0, c), i)
  }
}

// Only called where wasmAvailable (half.ts checks): inst is defined there.
export const float16ToFloat32Wasm = (src: Uint16Array, dst: Uint32Array): void => widen(inst!.k.f16ToF32, src, dst)
export const float32ToFloat16Wasm = (src: Uint32Array, dst: Uint16Array): void => narrow(inst!.k.f32ToF16, f32BitsToF16, src, dst)
export const bfloat16ToFloat32Wasm = (src: Uint16Array, dst: Uint32Array): void => widen(inst!.k.bf16ToF32, src, dst)
export const float32ToBfloat16Wasm = (src: Uint32Array, dst: Uint16Array): void => narrow(inst!.k.f32ToBf16, f32BitsToBf16, src, dst)
