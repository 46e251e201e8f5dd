// The workloads of issue 4/6, the same shapes and configs as bench/peer.py's WORKLOADS, with
// seeded random float32 inputs (src/tasks/prng.ts). Each one builds a LossRequest for the
// client, its GFLOP (bench/cost.ts) and the bytes of its tensors.
import { Prng } from '../src/tasks/prng.ts'
import { initParams } from '../src/tasks/cpc-params.ts'
import type { HostTensor } from '../src/tensor.ts'
import type { KindName, LossRequest } from '../src/client/index.ts'
import { gflopCpc, gflopFmct, gflopNtXent } from './cost.ts'

export interface Workload {
  name: string
  /** peer.py --workload name (the float16 variant times the same math as its float32 one) */
  peer: string
  kind: KindName
  gflop: number
  describe: string
  request: () => LossRequest
}

/** Standard normal values (Box–Muller over the seeded generator), times `scale`. */
function randn (prng: Prng, shape: number[], scale = 1): HostTensor {
  let n = 1
  for (const d of shape) n *= d
  const data = new Float32Array(n)
  for (let i = 0; i < n; i += 2) {
    const u = 1 - prng.float()
    const v = prng.float()
    const r = Math.sqrt(-2 * Math.log(u)) * scale
    data[i] = r * Math.cos(2 * Math.PI * v)
    if (i + 1 < n) data[i + 1] = r * Math.sin(2 * Math.PI * v)
  }
  return { shape, data }
}

function ntXent (name: string, b: number, d: number): Workload {
  return {
    name, peer: name, kind: 'nt-xent', gflop: gflopNtXent(b, d), describe: `nt-xent b ${b}, d ${d}`,
    request: () => {
      const prng = new Prng(0)
      // rows of norm ~1, like SimCLR's projection outputs (peer.py does the same)
      return { config: { temperature: 0.5 }, inputs: { out_1: randn(prng, [b, d], d ** -0.5), out_2: randn(prng, [b, d], d ** -0.5) } }
    }
  }
}

function fmct (name: string, b: number, c: number, sizes: number[], dtype: 'float32' | 'float16' = 'float32', peer = name): Workload {
  const comparisons = '01, 02, 11'
  const targets = [1, 2, 1] // the pi of "01, 02, 11"
  return {
    name, peer, kind: 'feature-map-contrastive', gflop: gflopFmct(b, c, targets.map(p => sizes[p] ** 2), true),
    describe: `feature-map-contrastive b ${b}, c ${c}, maps ${sizes.map(s => `${s}x${s}`).join('/')}, "${comparisons}"${dtype !== 'float32' ? `, ${dtype} on the wire` : ''}`,
    request: () => {
      const prng = new Prng(0)
      const anchor = sizes.map(s => randn(prng, [b, c, s, s]))
      const positive = sizes.map(s => randn(prng, [b, c, s, s]))
      // a fixed seed: the same source locations every call (Bolts draws them; so does the server, from the seed)
      return { config: { comparisons, tclip: 10, bidirectional: true }, inputs: { anchor, positive }, options: { seed: 0 }, dtype }
    }
  }
}

function cpc (name: string, b: number, C: number, hw: number): Workload {
  const config = { num_input_channels: C, target_dim: 64, embed_scale: 0.1, hidden_channels: 256, num_blocks: 5, step_weighting: 'bolts' as const }
  return {
    name, peer: name, kind: 'cpc', gflop: gflopCpc(b, C, hw, hw, 64, 256, 5),
    describe: `cpc b ${b}, C ${C}, ${hw}x${hw}, target 64, PixelCNN 256x5 (params sent, param_grads back)`,
    request: () => {
      const prng = new Prng(0)
      // the peer's backward also fills every parameter's .grad: ask for param_grads so the math matches
      return { config, inputs: { z: randn(prng, [b, C, hw, hw]) }, params: initParams(config, 0), options: { param_grads: true } }
    }
  }
}

export const WORKLOADS: Record<string, Workload> = Object.fromEntries([
  ntXent('simclr', 256, 128),
  fmct('amdim-small', 64, 256, [1, 5, 7]),
  cpc('cpc-small', 8, 256, 7),
  // Bolts' CIFAR AMDIM: maps 1x1 / 5x5 / 7x7 of 1280 channels
  fmct('amdim', 200, 1280, [1, 5, 7]),
  fmct('amdim-fp16', 200, 1280, [1, 5, 7], 'float16', 'amdim'),
  // Bolts' CPC v2 head on 7x7 ResNet features of 2048 channels
  cpc('cpc', 32, 2048, 7)
].map(w => [w.name, w]))

/** Bytes of the request's tensors as float32 (what the server must hold at least once). */
export function tensorBytes (req: LossRequest): number {
  let n = 0
  const add = (t: unknown): void => { n += (t as HostTensor).data.byteLength }
  for (const v of Object.values(req.inputs)) Array.isArray(v) ? v.forEach(add) : add(v)
  for (const v of Object.values(req.params ?? {})) add(v)
  return n
}
