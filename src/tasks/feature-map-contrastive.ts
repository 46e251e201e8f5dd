// feature-map-contrastive: Bolts' `FeatureMapContrastiveTask`, AMDIM's local/global NCE between
// feature maps of two views (Bachman et al. 2019) (../../../shared/spec/LOSSES.md
// "feature-map-contrastive"). Random choices and their validation live in feature-map-plan.ts.
//
// compare(m1, m2): src[n] = m1[n, :, y_n, x_n] (b, c) at the sampled locations; targets are every
// location of m2, column n·h2·w2 + y·w2 + x; then amdim-nce (nce-core.ts) with tclip.
// Comparison (ai, pi): direction 1 = compare(anchor[ai], positive[pi]); direction 2 (when
// bidirectional) = compare(positive[ai], anchor[pi]); its loss and regularizer are the means of
// the directions. loss = Σ losses + Σ regularizers, as Bolts' AMDIM module trains.
//
// Layout: each map that takes part is transposed once, NCHW -> rows (b·h·w, c) (row n·h·w + y·w + x),
// and serves both as a source (gather b rows) and as targets (one (b, c)×(c, b·h·w) matmul per
// direction, transposeB), so no identity masks and no per-element JS loops touch big tensors.
import * as tf from '@tensorflow/tfjs'
import { randomSeed } from './prng.ts'
import type { HostTensor } from '../tensor.ts'
import { featureMapContrastiveConfig, featureMapContrastiveOptions, type FeatureMapContrastiveConfig, type FeatureMapContrastiveOptions } from '../../schemas/kinds/feature-map-contrastive.ts'
import { checkRequest, plan, type MapShapes } from './feature-map-plan.ts'
import { gatherRows } from './gather-rows.ts'
import { noParams } from './input-checks.ts'
import { amdimNceFromScores } from './nce-core.ts'
import { runWithGrads } from './run-with-grads.ts'
import type { CommonOptions, EvalResult, TaskKind } from './types.ts'

type Options = CommonOptions & FeatureMapContrastiveOptions
type Side = 'anchor' | 'positive'

/** Flat source rows n·h·w + loc_n of the sampled locations. */
function sourceRows (locs: number[], hw: number): Int32Array {
  const rows = new Int32Array(locs.length)
  for (let n = 0; n < locs.length; n++) rows[n] = n * hw + locs[n]
  return rows
}

export const featureMapContrastive: TaskKind<FeatureMapContrastiveConfig, Options> = {
  name: 'feature-map-contrastive',
  configSchema: featureMapContrastiveConfig,
  optionsSchema: featureMapContrastiveOptions,
  inputs: { anchor: 'list', positive: 'list' },
  hasParams: false,

  check (config, inputs, params, options) {
    noParams('feature-map-contrastive', params)
    checkRequest(config, inputs, options)
  },

  evaluate (config, inputs, _params, options): EvalResult {
    const maps: Record<Side, HostTensor[]> = { anchor: inputs.anchor as HostTensor[], positive: inputs.positive as HostTensor[] }
    const shapes: MapShapes = maps.anchor.map(t => [...t.shape] as [number, number, number, number])
    const sampled = plan(config, shapes, options, options.seed ?? randomSeed())
    const directions: Array<[Side, Side]> = config.bidirectional ? [['anchor', 'positive'], ['positive', 'anchor']] : [['anchor', 'positive']]

    // Only maps that take part go through the gradient (tfjs refuses unconnected inputs).
    const used: Array<[Side, number]> = []
    const usedIndex = new Map<string, number>()
    const use = (side: Side, k: number): void => {
      const key = `${side}${k}`
      if (!usedIndex.has(key)) { usedIndex.set(key, used.length); used.push([side, k]) }
    }
    for (const [ai, pi] of sampled.pairs) for (const [s1, s2] of directions) { use(s1, ai); use(s2, pi) }

    const r = runWithGrads(used.map(([side, k]) => maps[side][k]), options.gradients !== false, (ts) => {
      const rows = ts.map((t, i) => {
        const [b, c, h, w] = shapes[used[i][1]]
        return tf.reshape(tf.transpose(t, [0, 2, 3, 1]), [b * h * w, c]) as tf.Tensor2D
      })
      const rowsOf = (side: Side, k: number): tf.Tensor2D => rows[usedIndex.get(`${side}${k}`) as number]
      const losses: tf.Scalar[] = []
      const regs: tf.Scalar[] = []
      sampled.pairs.forEach(([ai, pi], k) => {
        const [b, c, h, w] = shapes[ai]
        const L = shapes[pi][2] * shapes[pi][3]
        const dirLoss: tf.Scalar[] = []
        const dirReg: tf.Scalar[] = []
        directions.forEach(([s1, s2], dir) => {
          const src = gatherRows(rowsOf(s1, ai), sourceRows(sampled.locations[k][dir], h * w)) // (b, c)
          // raw = src·trgᵀ / sqrt(c); the scale goes on the small (b, c) operand.
          const raw = tf.matMul(tf.mul(src, 1 / Math.sqrt(c)), rowsOf(s2, pi), false, true) as tf.Tensor2D
          const { nce, regularizer } = amdimNceFromScores(raw, b, L, config.tclip)
          dirLoss.push(nce)
          dirReg.push(regularizer)
        })
        losses.push(tf.mul(tf.addN(dirLoss), 1 / dirLoss.length) as tf.Scalar)
        regs.push(tf.mul(tf.addN(dirReg), 1 / dirReg.length) as tf.Scalar)
      })
      const regularizer = tf.addN(regs) as tf.Scalar
      return { loss: tf.add(tf.addN(losses), regularizer) as tf.Scalar, terms: tf.stack([...losses, regularizer]) as tf.Tensor1D }
    })

    const terms = r.terms as Float32Array
    const nComp = sampled.pairs.length
    const result: EvalResult = {
      loss: r.loss,
      terms: { losses: Array.from(terms.subarray(0, nComp)), regularizer: terms[nComp] },
      sampled
    }
    if (r.grads) {
      const grads = r.grads
      const gradOf = (side: Side, k: number): HostTensor => {
        const i = usedIndex.get(`${side}${k}`)
        return i === undefined ? { shape: [...shapes[k]], data: new Float32Array(maps[side][k].data.length) } : grads[i]
      }
      result.grads = {
        anchor: maps.anchor.map((_, k) => gradOf('anchor', k)),
        positive: maps.positive.map((_, k) => gradOf('positive', k))
      }
    }
    return result
  }
}
