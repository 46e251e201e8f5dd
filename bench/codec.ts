// Codec throughput (printed, never asserted): a 150 MB float32 tensor and a 150 MB float16
// tensor through decodeTensor / encodeTensor and the msgpack layer, as a request and a
// response would go. Run: node --import tsx bench/codec.ts
import { decodeTensor, encodeTensor } from '../src/wire/tensor-codec.ts'
import { decode, encode } from '../src/wire/msgpack.ts'
import type { WireDtype } from '../src/tensor.ts'

const MB = 1e6
const BYTES = 150 * MB
const limits = { maxElements: 2 ** 31 }

interface Timing { wall: number, cpu: number }

/** Best of `reps` runs, wall clock and this process's CPU time (steadier on a busy machine). */
function time (fn: () => unknown, reps = 5): Timing {
  fn() // warm up the JIT
  let wall = Infinity
  let cpu = Infinity
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    fn()
    wall = Math.min(wall, Number(process.hrtime.bigint() - t0) / 1e9)
    const c = process.cpuUsage(c0)
    cpu = Math.min(cpu, (c.user + c.system) / 1e6)
  }
  return { wall, cpu }
}

function rate (bytes: number, s: number): string {
  // a zero-copy view takes microseconds: say so rather than print an absurd rate
  return s < 1e-4 ? '  (view)' : `${(bytes / MB / s).toFixed(0).padStart(8)}`
}

function report (what: string, bytes: number, t: Timing): void {
  console.log(`${what.padEnd(46)} ${rate(bytes, t.wall)} MB/s wall ${rate(bytes, t.cpu)} MB/s cpu  (${(t.wall * 1e3).toFixed(1)} ms)`)
}

// a baseline for this machine and its load: one plain copy of 150 MB into fresh memory
{
  const a = new Uint8Array(BYTES).fill(1)
  report('baseline: copy 150 MB into a new buffer', BYTES, time(() => new Uint8Array(a)))
}

for (const dtype of ['float32', 'float16', 'bfloat16'] as WireDtype[]) {
  const itemsize = dtype === 'float32' ? 4 : 2
  const n = Math.floor(BYTES / itemsize)
  const host = { shape: [n], data: new Float32Array(n) }
  for (let i = 0; i < n; i++) host.data[i] = Math.sin(i) * 100
  const wire = encodeTensor(host, dtype, 'msgpack')
  const body = encode({ inputs: { z: wire } })
  const bytes = (wire.data as Uint8Array).byteLength
  console.log(`--- ${dtype}: ${n} elements, ${(bytes / MB).toFixed(0)} MB on the wire`)
  report(`${dtype} encodeTensor (HostTensor -> bytes)`, bytes, time(() => encodeTensor(host, dtype, 'msgpack')))
  report(`${dtype} decodeTensor (bytes -> Float32Array)`, bytes, time(() => decodeTensor(wire, ['z'], limits)))
  report(`${dtype} msgpack encode of the tensor map`, bytes, time(() => encode({ grads: { z: wire } })))
  report(`${dtype} msgpack decode (scan + views)`, bytes, time(() => decode(body)))
  report(`${dtype} body -> Float32Array (decode + codec)`, bytes, time(() => decodeTensor((decode(body) as any).inputs.z, ['z'], limits)))
}
