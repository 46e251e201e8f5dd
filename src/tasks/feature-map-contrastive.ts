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
// The tensor work (layouts, kernels, written-out gradient) is in feature-map-pass.ts.
import { randomSeed } from './prng.ts'
import type { HostTensor } from '../tensor.ts'
import type { FeatureMapContrastiveConfig } from '../../schemas/kinds/feature-map-contrastive.ts'
import { plan, type MapShapes } from './feature-map-plan.ts'
import { featureMapPass, type Side } from './feature-map-pass.ts'
import { checkFiniteLoss } from './run-with-grads.ts'
import type { EvalResult, TaskKind } from './types.ts'
import { featureMapContrastiveSpec, type FeatureMapContrastiveKindOptions } from './feature-map-contrastive-spec.ts'

export const featureMapContrastive: TaskKind<FeatureMapContrastiveConfig, FeatureMapContrastiveKindOptions> = {
  ...featureMapContrastiveSpec,

  evaluate (config, inputs, _params, options): EvalResult {
    const maps: Record<Side, HostTensor[]> = { anchor: inputs.anchor as HostTensor[], positive: inputs.positive as HostTensor[] }
    const shapes: MapShapes = maps.anchor.map(t => [...t.shape] as [number, number, number, number])
    const sampled = plan(config, shapes, options, options.seed ?? randomSeed())
    const r = featureMapPass(maps, sampled, config.bidirectional, config.tclip, options.gradients !== false)
    const nComp = sampled.pairs.length
    checkFiniteLoss(r.terms[nComp + 1])
    const result: EvalResult = {
      loss: r.terms[nComp + 1],
      terms: { losses: Array.from(r.terms.subarray(0, nComp)), regularizer: r.terms[nComp] },
      sampled
    }
    if (r.grads) {
      const grads = r.grads
      // Maps that take part in no comparison get zeros.
      const gradOf = (side: Side, k: number): HostTensor => grads.get(`${side}${k}`) ?? { shape: [...shapes[k]], data: new Float32Array(maps[side][k].data.length) }
      result.grads = {
        anchor: maps.anchor.map((_, k) => gradOf('anchor', k)),
        positive: maps.positive.map((_, k) => gradOf('positive', k))
      }
    }
    return result
  }
}
