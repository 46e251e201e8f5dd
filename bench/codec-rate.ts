// The tensor codec alone, in this process: a 150 MB float32 and a 150 MB float16 tensor
// through the path a request and an answer take (bench/codec.ts prints every stage; this is
// its end-to-end pair for the table). encode: HostTensor -> encodeTensor -> msgpack body;
// decode: body -> msgpack decode (scan + views) -> decodeTensor -> Float32Array.
import { decodeTensor, encodeTensor } from '../src/wire/tensor-codec.ts'
import { decode, encode } from '../src/wire/msgpack.ts'
import type { WireDtype } from '../src/tensor.ts'

export interface CodecRate { dtype: WireDtype, wireBytes: number, encodeGBs: number, decodeGBs: number, encodeMs: number, decodeMs: number }

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

export function codecRates (mb = 150, reps = 5): CodecRate[] {
  const out: CodecRate[] = []
  for (const dtype of ['float32', 'float16'] as WireDtype[]) {
    const itemsize = dtype === 'float32' ? 4 : 2
    const n = Math.floor(mb * 1e6 / itemsize)
    const host = { shape: [n], data: new Float32Array(n) }
    for (let i = 0; i < n; i++) host.data[i] = Math.sin(i) * 100
    const body = encode({ inputs: { z: encodeTensor(host, dtype, 'msgpack') } })
    const wireBytes = n * itemsize
    const encodeMs = best(() => encode({ grads: { z: encodeTensor(host, dtype, 'msgpack') } }), reps)
    const decodeMs = best(() => decodeTensor((decode(body) as any).inputs.z, ['inputs', 'z'], { maxElements: 2 ** 31 }), reps)
    out.push({ dtype, wireBytes, encodeMs, decodeMs, encodeGBs: wireBytes / 1e6 / encodeMs, decodeGBs: wireBytes / 1e6 / decodeMs })
  }
  return out
}
