// Codec throughput (printed, never asserted): 150 MB on the wire per dtype (float32,
// float16, bfloat16) through decodeTensor / encodeTensor and the msgpack layer, as a request
// and a response would go, and half.ts's conversion alone. Run: node --import tsx bench/codec.ts
// Each line gives MB/s of WIRE bytes and of FLOAT32 bytes (twice as many for float16 and
// bfloat16, the same for float32), by wall clock and by this process's CPU time, best of 5.
import { decodeTensor, encodeTensor } from '../src/wire/tensor-codec.ts'
import { decode, encode } from '../src/wire/msgpack.ts'
import { bfloat16ToFloat32Bulk, float16ToFloat32Bulk, float32ToBfloat16Bulk, float32ToFloat16Bulk, halfWasmAvailable } from '../src/wire/half.ts'
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
  return s < 1e-4 ? '  (view)' : (bytes / MB / s).toFixed(0).padStart(8)
}

/** `wire` bytes on the wire, `f32` bytes of float32 on the host side */
function report (what: string, wire: number, f32: number, t: Timing): void {
  console.log(`${what.padEnd(50)} ${rate(wire, t.wall)} ${rate(wire, t.cpu)}  ${rate(f32, t.wall)} ${rate(f32, t.cpu)}  ${(t.wall * 1e3).toFixed(1).padStart(7)}`)
}

console.log(`half.ts bulk conversion: ${halfWasmAvailable ? 'WebAssembly SIMD' : 'JavaScript (no wasm SIMD here)'}`)
console.log(`${'MB/s'.padEnd(50)} ${'wire:'.padStart(8)} ${''.padStart(8)}  ${'float32:'.padStart(8)}`)
console.log(`${''.padEnd(50)} ${'wall'.padStart(8)} ${'cpu'.padStart(8)}  ${'wall'.padStart(8)} ${'cpu'.padStart(8)}  ${'wall ms'.padStart(7)}`)
// baselines for this machine and its load: a plain copy of 150 MB into fresh memory (pages
// the kernel faults in and zeroes), and into memory already touched
{
  const a = new Uint8Array(BYTES).fill(1)
  const b = new Uint8Array(BYTES).fill(2)
  report('baseline: copy 150 MB into a new buffer', BYTES, BYTES, time(() => new Uint8Array(a)))
  report('baseline: copy 150 MB into touched memory', BYTES, BYTES, time(() => b.set(a)))
  report('baseline: allocate 300 MB, write once (float16 decode floor)', BYTES, 2 * BYTES, time(() => new Uint8Array(2 * BYTES).fill(1)))
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
  const f32 = n * 4
  if (dtype !== 'float32') {
    const bits = new Uint32Array(host.data.buffer)
    const half = new Uint16Array(n)
    const back = new Uint32Array(n)
    report(`${dtype} conversion alone, float32 -> ${dtype}`, bytes, f32, time(() => (dtype === 'float16' ? float32ToFloat16Bulk : float32ToBfloat16Bulk)(bits, half)))
    report(`${dtype} conversion alone, ${dtype} -> float32`, bytes, f32, time(() => (dtype === 'float16' ? float16ToFloat32Bulk : bfloat16ToFloat32Bulk)(half, back)))
  }
  report(`${dtype} encodeTensor (HostTensor -> bytes)`, bytes, f32, time(() => encodeTensor(host, dtype, 'msgpack')))
  report(`${dtype} decodeTensor (bytes -> Float32Array)`, bytes, f32, time(() => decodeTensor(wire, ['z'], limits)))
  report(`${dtype} msgpack encode of the tensor map`, bytes, f32, time(() => encode({ grads: { z: wire } })))
  report(`${dtype} msgpack decode (scan + views)`, bytes, f32, time(() => decode(body)))
  report(`${dtype} body -> Float32Array (decode + codec)`, bytes, f32, time(() => decodeTensor((decode(body) as any).inputs.z, ['z'], limits)))
  report(`${dtype} HostTensor -> body (codec + encode)`, bytes, f32, time(() => encode({ grads: { z: encodeTensor(host, dtype, 'msgpack') } })))
}
