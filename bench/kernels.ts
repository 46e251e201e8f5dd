// Times `evaluate()` of each loss kind in-process on one backend, with the workloads (shapes) of
// bench/peer.py, so the kernels can be compared with PyTorch without HTTP, codecs or workers.
// Forward + backward (input gradients; cpc also its parameter gradients, as the peer's
// loss.backward() computes both). GFLOP is the cost model of ../shared/spec/LOSSES.md "Cost".
//
//   node --import tsx bench/kernels.ts --backend tensorflow --workload amdim,cpc --repeats 3 --warmup 1 [--profile] [--json]
//
// --profile runs one extra evaluation under tf.profile() and prints the kernels by total time.
import * as tf from '@tensorflow/tfjs'
import { initBackend, type BackendChoice } from '../src/compute/backend.ts'
import type { HostTensor } from '../src/tensor.ts'
import { Prng } from '../src/tasks/prng.ts'
import { initParams } from '../src/tasks/cpc-params.ts'
import { cpc } from '../src/tasks/cpc.ts'
import { featureMapContrastive } from '../src/tasks/feature-map-contrastive.ts'
import { ntXent } from '../src/tasks/nt-xent.ts'
import type { EvalResult, TaskKind } from '../src/tasks/types.ts'

interface Workload { kind: TaskKind, config: unknown, options: Record<string, unknown>, gflop: number, inputs: () => { inputs: Record<string, HostTensor | HostTensor[]>, params?: Record<string, HostTensor> } }

/** Standard normal float32 (Box–Muller on the seeded Prng), times `scale`. */
function randn (prng: Prng, shape: number[], scale = 1): HostTensor {
  const n = shape.reduce((a, d) => a * d, 1)
  const data = new Float32Array(n)
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - prng.float())) * scale
    const t = 2 * Math.PI * prng.float()
    data[i] = r * Math.cos(t)
    if (i + 1 < n) data[i + 1] = r * Math.sin(t)
  }
  return { shape, data }
}

function fmct (b: number, c: number, sizes: number[], comparisons: string): Workload {
  const areas = comparisons.split(',').map(s => sizes[Number(s.trim()[1])] ** 2)
  return {
    kind: featureMapContrastive,
    config: { comparisons, tclip: 10, bidirectional: true },
    options: { gradients: true, param_grads: false, seed: 0 },
    gflop: 3 * 2 * 2 * areas.reduce((a, L) => a + b * b * c * L, 0) / 1e9,
    inputs: () => {
      const prng = new Prng(0)
      return { inputs: { anchor: sizes.map(s => randn(prng, [b, c, s, s])), positive: sizes.map(s => randn(prng, [b, c, s, s])) } }
    }
  }
}

function cpcWorkload (b: number, C: number, h: number, w: number, T = 64, H = 256, K = 5): Workload {
  const pixel = K * b * h * (w * (2 * C * H + 2 * H * H) + 3 * (w - 2) * H * H)
  const heads = 2 * b * h * w * C * T
  let rows = 0
  for (let i = 1; i <= h - 2; i++) rows += h - i - 1
  const logits = b * b * w * w * h * T * rows
  const config = { num_input_channels: C, target_dim: T, embed_scale: 0.1, hidden_channels: H, num_blocks: K, step_weighting: 'bolts' }
  return {
    kind: cpc,
    config,
    options: { gradients: true, param_grads: true },
    gflop: 3 * 2 * (pixel + heads + logits) / 1e9,
    inputs: () => ({ inputs: { z: randn(new Prng(0), [b, C, h, w]) }, params: initParams(config as never, 0) })
  }
}

function simclr (b: number, d: number): Workload {
  return {
    kind: ntXent,
    config: { temperature: 0.5 },
    options: { gradients: true, param_grads: false },
    gflop: 3 * 2 * (2 * b) ** 2 * d / 1e9,
    inputs: () => {
      const prng = new Prng(0)
      return { inputs: { out_1: randn(prng, [b, d], d ** -0.5), out_2: randn(prng, [b, d], d ** -0.5) } }
    }
  }
}

const WORKLOADS: Record<string, Workload> = {
  simclr: simclr(256, 128),
  'amdim-small': fmct(64, 256, [1, 5, 7], '01, 02, 11'),
  'cpc-small': cpcWorkload(8, 256, 7, 7),
  amdim: fmct(200, 1280, [1, 5, 7], '01, 02, 11'),
  cpc: cpcWorkload(32, 2048, 7, 7)
}

function arg (name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback
}

const backend = arg('backend', 'tensorflow') as BackendChoice
const names = arg('workload', 'simclr,amdim-small,cpc-small').split(',')
const repeats = Number(arg('repeats', '3'))
const warmup = Number(arg('warmup', '1'))
const json = process.argv.includes('--json')
const profile = process.argv.includes('--profile')

const info = await initBackend(backend)
for (const name of names) {
  const wl = WORKLOADS[name]
  if (!wl) throw new Error(`unknown workload '${name}'; one of ${Object.keys(WORKLOADS).join(', ')}`)
  const config = wl.kind.configSchema.parse(wl.config)
  const { inputs, params } = wl.inputs()
  const run = (): EvalResult => wl.kind.evaluate(config, inputs, params, wl.options as never)
  const before = tf.memory().numTensors
  const times: number[] = []
  // CPU time (user + system, all threads) beside wall time: on a shared machine it shows the
  // work done even when other processes stretch the wall clock.
  const cpu: number[] = []
  // System time and minor page faults: fresh pages of large tensors and read-back buffers are
  // faulted in (and zeroed) by the kernel, single-threaded, on every evaluation.
  const sys: number[] = []
  const faults: number[] = []
  let loss = NaN
  // Peak RSS over the evaluations minus the RSS before them (inputs already made). maxRSS is a
  // process-lifetime peak: exact for the first workload of a run, a lower bound after it.
  const rss0 = process.memoryUsage().rss
  for (let r = 0; r < warmup + repeats; r++) {
    const c0 = process.cpuUsage()
    const f0 = process.resourceUsage().minorPageFault
    const t0 = performance.now()
    loss = run().loss
    const dt = performance.now() - t0
    const dc = process.cpuUsage(c0)
    const df = process.resourceUsage().minorPageFault - f0
    if (r >= warmup) { times.push(dt); cpu.push((dc.user + dc.system) / 1000); sys.push(dc.system / 1000); faults.push(df) }
  }
  const peakGrowthMb = Math.round((process.resourceUsage().maxRSS * 1024 - rss0) / 2 ** 20)
  const sorted = [...times].sort((a, b) => a - b)
  const median = sorted[Math.floor(sorted.length / 2)]
  const out = { workload: name, backend: info.tfBackend, times_ms: times.map(t => Math.round(t)), median_ms: Math.round(median), min_ms: Math.round(sorted[0]), cpu_ms: cpu.map(t => Math.round(t)), sys_ms: sys.map(t => Math.round(t)), minor_faults: faults, peak_rss_growth_mb: peakGrowthMb, loss, gflop: wl.gflop, gflops: +(wl.gflop / (median / 1000)).toFixed(1), leaked: tf.memory().numTensors - before, load: (await import('node:os')).loadavg().map(x => +x.toFixed(2)) }
  console.log(json ? JSON.stringify(out) : `${name} on ${out.backend}: median ${out.median_ms} ms (min ${out.min_ms}, ${out.times_ms.join(' ')}), ${out.gflops} GFLOP/s of ${wl.gflop.toFixed(2)}, cpu ${out.cpu_ms.join(' ')} ms (sys ${out.sys_ms.join(' ')}, minor faults ${out.minor_faults.join(' ')}), peak RSS +${peakGrowthMb} MB, loss ${loss}, leaked ${out.leaked}, load ${out.load.join(' ')}`)
  if (profile) {
    const p = await tf.profile(() => { run() })
    const byKernel = new Map<string, { ms: number, n: number }>()
    for (const k of p.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0
      const e = byKernel.get(k.name) ?? { ms: 0, n: 0 }
      e.ms += ms
      e.n++
      byKernel.set(k.name, e)
    }
    const rows = [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)
    for (const [k, e] of rows) console.log(`  ${k.padEnd(28)} ${e.ms.toFixed(1).padStart(9)} ms  x${e.n}`)
  }
}
