// Independent plain-JS float64 transcriptions of ../shared/spec/LOSSES.md ("nt-xent",
// "amdim-nce", "feature-map-contrastive") for the kind tests: second forward values on random
// shapes, and gradients by central differences. Written from the spec's formulas, loop by loop,
// sharing no code with src/tasks.
import { Prng } from '../../src/tasks/prng.ts'
import type { HostTensor } from '../../src/tensor.ts'

export interface Tensor64 { shape: number[], data: Float64Array }

/** Random float32-representable values in [-scale, scale), reproducible from `seed`. */
export function randomTensor (shape: number[], seed: number, scale = 1): HostTensor {
  const prng = new Prng(seed)
  const n = shape.reduce((a, d) => a * d, 1)
  const data = new Float32Array(n)
  for (let i = 0; i < n; i++) data[i] = prng.uniform(-scale, scale)
  return { shape, data }
}

export const to64 = (t: HostTensor): Tensor64 => ({ shape: [...t.shape], data: Float64Array.from(t.data) })

const tanhClip = (x: number, t: number | null): number => (t === null ? x : t * Math.tanh(x / t))

function logSumExp (xs: number[]): number {
  const m = Math.max(...xs)
  let s = 0
  for (const x of xs) s += Math.exp(x - m)
  return m + Math.log(s)
}

/** Bolts AmdimNCELoss (identity mask): src (b, d) row-major, trg (d, b·L) row-major. */
export function amdimNceRef (src: Float64Array, trg: Float64Array, b: number, d: number, L: number, tclip: number | null): { nce: number, regularizer: number } {
  const N = b * L
  const raw: number[][] = []
  let sq = 0
  for (let i = 0; i < b; i++) {
    const row: number[] = []
    for (let col = 0; col < N; col++) {
      let acc = 0
      for (let c = 0; c < d; c++) acc += src[i * d + c] * trg[c * N + col]
      acc /= Math.sqrt(d)
      sq += acc * acc
      row.push(acc)
    }
    raw.push(row)
  }
  const regularizer = 0.05 * sq / (b * N)
  let total = 0
  for (let i = 0; i < b; i++) {
    const s = raw[i].map(x => tanhClip(x, tclip))
    const negatives: number[] = []
    for (let j = 0; j < b; j++) if (j !== i) for (let l = 0; l < L; l++) negatives.push(s[j * L + l])
    for (let l = 0; l < L; l++) {
      const p = s[i * L + l]
      total += logSumExp([p, ...negatives]) - p
    }
  }
  return { nce: total / (b * L), regularizer }
}

/** Bolts nt_xent_loss with the spec's exact self-term exclusion. out_1, out_2 (b, d). */
export function ntXentRef (o1: Float64Array, o2: Float64Array, b: number, d: number, temperature: number, normalize = false): number {
  const rows: number[][] = []
  for (const src of [o1, o2]) {
    for (let k = 0; k < b; k++) {
      const r = Array.from(src.subarray(k * d, (k + 1) * d))
      if (normalize) {
        const norm = Math.max(Math.sqrt(r.reduce((a, x) => a + x * x, 0)), 1e-12)
        for (let c = 0; c < d; c++) r[c] /= norm
      }
      rows.push(r)
    }
  }
  const dot = (u: number[], v: number[]): number => u.reduce((a, x, c) => a + x * v[c], 0)
  let total = 0
  for (let k = 0; k < 2 * b; k++) {
    const logits: number[] = []
    for (let j = 0; j < 2 * b; j++) if (j !== k) logits.push(dot(rows[k], rows[j]) / temperature)
    const pos = dot(rows[k % b], rows[b + (k % b)]) / temperature
    total += logSumExp(logits) - pos
  }
  return total / (2 * b)
}

/** compare(m1, m2) of FeatureMapContrastiveTask: m1, m2 (b, c, h, w), locs b flat indices into m1. */
export function compareRef (m1: Tensor64, m2: Tensor64, locs: number[], tclip: number | null): { nce: number, regularizer: number } {
  const [b, c, h1, w1] = m1.shape
  const [, c2, h2, w2] = m2.shape
  if (c !== c2) throw new Error('compareRef: channel mismatch')
  const hw1 = h1 * w1
  const L = h2 * w2
  const src = new Float64Array(b * c)
  for (let n = 0; n < b; n++) for (let ch = 0; ch < c; ch++) src[n * c + ch] = m1.data[(n * c + ch) * hw1 + locs[n]]
  const trg = new Float64Array(c * b * L)
  for (let ch = 0; ch < c; ch++) for (let n = 0; n < b; n++) for (let l = 0; l < L; l++) trg[ch * b * L + n * L + l] = m2.data[(n * c + ch) * L + l]
  return amdimNceRef(src, trg, b, c, L, tclip)
}

export interface FmctRef { loss: number, losses: number[], regularizer: number }

export function featureMapContrastiveRef (anchor: Tensor64[], positive: Tensor64[], pairs: Array<[number, number]>, locations: number[][][], tclip: number | null, bidirectional: boolean): FmctRef {
  const losses: number[] = []
  let regularizer = 0
  pairs.forEach(([ai, pi], k) => {
    const dirs = [compareRef(anchor[ai], positive[pi], locations[k][0], tclip)]
    if (bidirectional) dirs.push(compareRef(positive[ai], anchor[pi], locations[k][1], tclip))
    losses.push(dirs.reduce((a, r) => a + r.nce, 0) / dirs.length)
    regularizer += dirs.reduce((a, r) => a + r.regularizer, 0) / dirs.length
  })
  return { loss: losses.reduce((a, x) => a + x, 0) + regularizer, losses, regularizer }
}

/** Central differences of a float64 function of several arrays (modified in place, restored). */
export function centralDiff (f: () => number, xs: Float64Array[], h = 1e-5): Float64Array[] {
  return xs.map(x => {
    const g = new Float64Array(x.length)
    for (let i = 0; i < x.length; i++) {
      const v = x[i]
      x[i] = v + h
      const up = f()
      x[i] = v - h
      const down = f()
      x[i] = v
      g[i] = (up - down) / (2 * h)
    }
    return g
  })
}
