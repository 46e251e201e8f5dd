// One forward (and backward) pass of feature-map-contrastive over planned comparisons
// (../../../shared/spec/LOSSES.md "feature-map-contrastive"; Bolts `FeatureMapContrastiveTask`).
// The gradient is written out, not taped, so that each kernel runs once on the layout it wants
// (docs/performance-kernels.md):
//  - a map that serves as targets is transposed once, NCHW -> rows (b·h·w, c) (row n·h·w + y·w + x;
//    layout.ts); a 1×1 map is already in that layout (a reshape); a map that is only a source
//    with h·w > 1 is never transposed: its b source vectors are gathered straight from NCHW;
//  - per direction: u = (src / (sqrt(c)·τ)) · rowsᵀ (one matMul, transposeB; τ = tclip folded
//    into the small operand, nce-core.ts), the NCE and its gradient dU, dSrc = dU · rows / (sqrt(c)·τ);
//  - per target map, all its uses at once: dRows = [dU_1; dU_2; …]ᵀ · [srcS_1; srcS_2; …] (one
//    matMul with the uses stacked along the inner dimension, instead of one per use plus adds);
//    source gradients are added into their rows (gather, add, TensorScatterUpdate: each use's
//    rows are distinct; uses apply one after another, so repeated locations across uses sum)
//    and the sum is transposed back to NCHW once.
import * as tf from '@tensorflow/tfjs'
import { matMul } from './mat-mul.ts'
import type { HostTensor } from '../tensor.ts'
import { fromRows, toRows } from './layout.ts'
import { amdimNce, scoreScale } from './nce-core.ts'
import { overwriteRows } from './gather-rows.ts'
import type { Sampled } from './types.ts'

export type Side = 'anchor' | 'positive'

interface MapState {
  shape: [number, number, number, number]
  /** NCHW; released once the rows exist (kept for a map that is only a source with h·w > 1) */
  x?: tf.Tensor
  /** (b·h·w, c) when the map serves as targets or is 1×1 */
  rows?: tf.Tensor2D
  trg: Array<{ dU: tf.Tensor2D, srcS: tf.Tensor2D }>
  /** flat indices into rows (rows layout) or into the NCHW data, with the gradient of the gathered values */
  src: Array<{ idx: Int32Array, dSrc: tf.Tensor2D }>
}

export interface PassResult {
  /** per comparison, then the regularizer, then the loss */
  terms: Float32Array
  /** the gradient of every map that took part, by `${side}${k}` */
  grads?: Map<string, HostTensor>
}

/** Source indices of the sampled locations: rows n·h·w + loc_n, or NCHW flat n·c·hw + ch·hw + loc_n. */
function sourceIndex (locs: number[], c: number, hw: number, rowsLayout: boolean): Int32Array {
  const b = locs.length
  if (rowsLayout) return Int32Array.from(locs, (loc, n) => n * hw + loc)
  const idx = new Int32Array(b * c)
  for (let n = 0; n < b; n++) for (let ch = 0; ch < c; ch++) idx[n * c + ch] = (n * c + ch) * hw + locs[n]
  return idx
}

/**
 * Loss terms and, with `gradients`, the gradient of the loss w.r.t. every map that takes part.
 * Runs in one tidy scope; only host arrays leave it.
 */
export function featureMapPass (maps: Record<Side, HostTensor[]>, sampled: Sampled, bidirectional: boolean, tclip: number | null, gradients: boolean): PassResult {
  const directions: Array<[Side, Side]> = bidirectional ? [['anchor', 'positive'], ['positive', 'anchor']] : [['anchor', 'positive']]
  const weight = 1 / directions.length // each comparison averages its directions
  const result: PassResult = { terms: new Float32Array(0) }
  tf.tidy(() => {
    const state = new Map<string, MapState>()
    const get = (side: Side, k: number): MapState => {
      const key = `${side}${k}`
      let s = state.get(key)
      if (!s) {
        const t = maps[side][k]
        s = { shape: t.shape as MapState['shape'], x: tf.tensor(t.data, t.shape, 'float32'), trg: [], src: [] }
        state.set(key, s)
      }
      return s
    }
    // Memory (docs/performance-kernels.md): the NCHW copy of a map goes as soon as its rows
    // exist, every map's tensors go after the forward loop, each direction's NCE intermediates
    // at its end, and each gradient right after it is read back.
    const rowsOf = (s: MapState): tf.Tensor2D => {
      if (!s.rows) {
        s.rows = toRows(s.x as tf.Tensor)
        if (s.rows.dataId !== (s.x as tf.Tensor).dataId) s.x?.dispose()
        s.x = undefined
      }
      return s.rows
    }
    // Targets first, so that a map used both ways is gathered from its rows.
    for (const [ai, pi] of sampled.pairs) for (const [, s2] of directions) rowsOf(get(s2, pi))
    for (const [ai] of sampled.pairs) for (const [s1] of directions) { const s = get(s1, ai); if (s.shape[2] * s.shape[3] === 1) rowsOf(s) }

    const losses: tf.Scalar[] = []
    const regs: tf.Scalar[] = []
    sampled.pairs.forEach(([ai, pi], k) => {
      const dirLoss: tf.Scalar[] = []
      const dirReg: tf.Scalar[] = []
      directions.forEach(([s1, s2], dir) => {
        const m1 = get(s1, ai)
        const m2 = get(s2, pi)
        const [b, c, h, w] = m1.shape
        const hw = h * w
        const L = m2.shape[2] * m2.shape[3]
        const scale = 1 / (Math.sqrt(c) * scoreScale(tclip))
        const idx = hw === 1 ? new Int32Array(0) : sourceIndex(sampled.locations[k][dir], c, hw, m1.rows !== undefined)
        const r = tf.tidy(() => {
          const src = (hw === 1
            ? m1.rows as tf.Tensor2D
            : m1.rows
              ? tf.gather(m1.rows, tf.tensor1d(idx, 'int32'))
              : tf.reshape(tf.gather(tf.reshape(m1.x as tf.Tensor, [-1]), tf.tensor1d(idx, 'int32')), [b, c])) as tf.Tensor2D
          // u = src·rowsᵀ / (sqrt(c)·τ); the scale goes on the small (b, c) operand.
          const srcS = tf.mul(src, scale) as tf.Tensor2D
          const rows = m2.rows as tf.Tensor2D
          const { nce, regularizer, dU } = amdimNce(matMul(srcS, rows, false, true), b, L, tclip, gradients ? weight : undefined)
          if (!dU) return { nce, regularizer }
          return { nce, regularizer, dU, srcS, dSrc: tf.mul(matMul(dU, rows), scale) as tf.Tensor2D }
        })
        dirLoss.push(r.nce)
        dirReg.push(r.regularizer)
        if (r.dU && r.srcS && r.dSrc) {
          m2.trg.push({ dU: r.dU, srcS: r.srcS })
          m1.src.push({ idx, dSrc: r.dSrc })
        }
      })
      losses.push(tf.mul(tf.addN(dirLoss), weight) as tf.Scalar)
      regs.push(tf.mul(tf.addN(dirReg), weight) as tf.Scalar)
    })
    for (const s of state.values()) { tf.dispose([s.x, s.rows].filter(t => t !== undefined)); s.x = s.rows = undefined }
    const regularizer = tf.addN(regs)
    result.terms = tf.concat([tf.stack(losses), tf.stack([regularizer, tf.add(tf.addN(losses), regularizer)])]).dataSync() as Float32Array
    if (!gradients) return

    result.grads = new Map()
    for (const [key, s] of state) {
      // Nothing returned from the tidy: tfjs would walk a returned Float32Array element by element.
      let data: Float32Array | undefined
      tf.tidy(() => { data = gradientOf(s).dataSync() as Float32Array })
      tf.dispose([...s.trg.flatMap(u => [u.dU, u.srcS]), ...s.src.map(u => u.dSrc)])
      result.grads.set(key, { shape: [...s.shape], data: data as Float32Array })
    }
  })
  return result
}

/**
 * d loss / d map, NCHW. A map that served as targets (or is 1×1) is in rows layout: the
 * target products, then its source rows added in; a source-only map scatters into NCHW.
 */
function gradientOf (s: MapState): tf.Tensor {
  const [b, c, h, w] = s.shape
  const hw = h * w
  if (s.trg.length === 0 && hw > 1) {
    const idx = concatIdx(s.src.map(u => u.idx))
    return tf.scatterND(tf.tensor2d(idx, [idx.length, 1], 'int32'), tf.reshape(tf.concat(s.src.map(u => u.dSrc), 0), [-1]), [b * c * hw])
  }
  let rowsGrad: tf.Tensor2D | undefined
  if (s.trg.length > 0) {
    const dUs = s.trg.length === 1 ? s.trg[0].dU : tf.concat(s.trg.map(u => u.dU), 0)
    const srcs = s.trg.length === 1 ? s.trg[0].srcS : tf.concat(s.trg.map(u => u.srcS), 0)
    rowsGrad = matMul(dUs, srcs, true, false)
  }
  if (hw === 1) {
    const parts = [...(rowsGrad ? [rowsGrad] : []), ...s.src.map(u => u.dSrc)]
    return fromRows((parts.length === 1 ? parts[0] : tf.addN(parts)) as tf.Tensor2D, s.shape)
  }
  // Each use's b source rows are distinct (one location per sample): add them in place of a
  // scatter into zeros plus a full-size add (one copy pass instead of three).
  let g = rowsGrad as tf.Tensor2D
  for (const u of s.src) {
    const rows = tf.tensor1d(u.idx, 'int32')
    g = overwriteRows(g, tf.reshape(rows, [b, 1]) as tf.Tensor2D, tf.add(tf.gather(g, rows), u.dSrc) as tf.Tensor2D)
  }
  return fromRows(g, s.shape)
}

function concatIdx (parts: Int32Array[]): Int32Array {
  if (parts.length === 1) return parts[0]
  const out = new Int32Array(parts.reduce((a, p) => a + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
