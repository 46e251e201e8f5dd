// amdim-nce: Bolts' `AmdimNCELoss` with the identity mask (each sample's partner is the same
// index), from AMDIM (Bachman et al. 2019) (../../../shared/spec/LOSSES.md "amdim-nce").
// anchor = r_src (b, d); positive = r_trg (d, b·L), column j·L + l = location l of sample j.
// loss = nce + regularizer; see nce-core.ts for the stable form.
import * as tf from '@tensorflow/tfjs'
import { matMul } from './mat-mul.ts'
import type { HostTensor } from '../tensor.ts'
import type { AmdimNceConfig } from '../../schemas/kinds/amdim-nce.ts'
import { amdimNce as amdimNceScores, scoreScale } from './nce-core.ts'
import { checkFiniteLoss } from './run-with-grads.ts'
import type { EvalResult, TaskKind } from './types.ts'
import { amdimNceSpec, type AmdimNceKindOptions } from './amdim-nce-spec.ts'


export const amdimNce: TaskKind<AmdimNceConfig, AmdimNceKindOptions> = {
  ...amdimNceSpec,

  evaluate (config, inputs, _params, options): EvalResult {
    const a = inputs.anchor as HostTensor
    const p = inputs.positive as HostTensor
    const [b, d] = a.shape
    const L = p.shape[1] / b
    const want = options.gradients !== false
    let terms: Float32Array = new Float32Array(3)
    let grads: { anchor: HostTensor, positive: HostTensor } | undefined
    // One tidy, nothing returned (see run-with-grads.ts); gradients written out (nce-core.ts).
    tf.tidy(() => {
      const src = tf.tensor2d(a.data, [b, d], 'float32')
      const trg = tf.tensor2d(p.data, [d, b * L], 'float32')
      // Scale the (b, d) operand by 1/(sqrt(d)·τ) rather than the (b, b·L) product (nce-core.ts).
      const scale = 1 / (Math.sqrt(d) * scoreScale(config.tclip))
      const srcS = tf.mul(src, scale) as tf.Tensor2D
      const { nce, regularizer, dU: dRaw } = amdimNceScores(matMul(srcS, trg), b, L, config.tclip, want ? 1 : undefined)
      terms = tf.stack([nce, regularizer, tf.add(nce, regularizer)]).dataSync() as Float32Array
      if (dRaw) {
        grads = {
          anchor: { shape: [b, d], data: tf.mul(matMul(dRaw, trg, false, true), scale).dataSync() as Float32Array },
          positive: { shape: [d, b * L], data: matMul(srcS, dRaw, true, false).dataSync() as Float32Array }
        }
      }
    })
    checkFiniteLoss(terms[2])
    return {
      loss: terms[2],
      terms: { nce: terms[0], regularizer: terms[1] },
      ...(grads ? { grads } : {})
    }
  }
}
