// The tensor codec alone, in this process: 150 MB on the wire per dtype (float32: 37.5 M
// elements; float16 and bfloat16: 75 M elements, i.e. 300 MB of float32 on the host side)
// through the path a request and an answer take (bench/codec.ts prints every stage; this is
// its end-to-end pair for the table). encode: HostTensor -> encodeTensor -> msgpack body;
// decode: body -> msgpack decode (scan + views) -> decodeTensor -> Float32Array.
//
// What "GB/s" means here: WIRE bytes (the encoded tensor, what the network carries) per
// second of wall clock, best of `reps`. For float16/bfloat16 the float32 side moves twice
// as many bytes, so their float32 GB/s (`encodeF32GBs`, `decodeF32GBs`) is twice the wire
// figure; for float32 the two are the same. Both include allocating the output (fresh pages
// the kernel must fault in and zero: for a 150 MB float16 decode that is 300 MB of new
// Float32Array) and, for encode, msgpack copying the bytes into the body.
// `convertEncodeMs` / `convertDecodeMs`: half.ts's bulk conversion alone into arrays already
// written once (no allocation, no msgpack), the part the float16 kernels decide.
import { decodeTensor, encodeTensor } from '../src/wire/tensor-codec.ts'
import { decode, encode } from '../src/wire/msgpack.ts'
import { bfloat16ToFloat32Bulk, float16ToFloat32Bulk, float32ToBfloat16Bulk, float32ToFloat16Bulk } from '../src/wire/half.ts'
import type { WireDtype } from '../src/tensor.ts'

export interface CodecRate {
  dtype: WireDtype
  /** bytes of the encoded tensor (the GB/s numerator) */
  wireBytes: number
  /** bytes of the same tensor as float32 (2x wireBytes for float16/bfloat16) */
  f32Bytes: number
  /** wire GB/s */
  encodeGBs: number
  decodeGBs: number
  /** float32 GB/s: f32Bytes over the same times */
  encodeF32GBs: number
  decodeF32GBs: number
  encodeMs: number
  decodeMs: number
  /** half.ts conversion alone, into memory already touched; undefined for float32 (no conversion) */
  convertEncodeMs?: number
  convertDecodeMs?: number
}

function best (fn: () => unknown, reps: number): number {
  fn() // JIT warm-up
  let t = Infinity
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now()
    fn()
    t = Math.min(t, performance.now() - t0)
  }
  return t
}

export function codecRates (mb = 150, reps = 5, dtypes: WireDtype[] = ['float32', 'float16', 'bfloat16']): CodecRate[] {
  const out: CodecRate[] = []
  for (const dtype of dtypes) {
    const itemsize = dtype === 'float32' ? 4 : 2
    const n = Math.floor(mb * 1e6 / itemsize)
    const host = { shape: [n], data: new Float32Array(n) }
    for (let i = 0; i < n; i++) host.data[i] = Math.sin(i) * 100
    const body = encode({ inputs: { z: encodeTensor(host, dtype, 'msgpack') } })
    const wireBytes = n * itemsize
    const f32Bytes = n * 4
    const encodeMs = best(() => encode({ grads: { z: encodeTensor(host, dtype, 'msgpack') } }), reps)
    const decodeMs = best(() => decodeTensor((decode(body) as any).inputs.z, ['inputs', 'z'], { maxElements: 2 ** 31 }), reps)
    const r: CodecRate = {
      dtype, wireBytes, f32Bytes, encodeMs, decodeMs,
      encodeGBs: wireBytes / 1e6 / encodeMs, decodeGBs: wireBytes / 1e6 / decodeMs,
      encodeF32GBs: f32Bytes / 1e6 / encodeMs, decodeF32GBs: f32Bytes / 1e6 / decodeMs
    }
    if (dtype === 'float16' || dtype === 'bfloat16') {
      const bits = new Uint32Array(host.data.buffer)
      const half = new Uint16Array(n)
      const back = new Uint32Array(n)
      const narrow = dtype === 'float16' ? float32ToFloat16Bulk : float32ToBfloat16Bulk
      const widen = dtype === 'float16' ? float16ToFloat32Bulk : bfloat16ToFloat32Bulk
      r.convertEncodeMs = best(() => narrow(bits, half), reps)
      r.convertDecodeMs = best(() => widen(half, back), reps)
    }
    out.push(r)
  }
  return out
}
