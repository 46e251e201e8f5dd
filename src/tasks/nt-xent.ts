// nt-xent: SimCLR's normalized temperature-scaled cross entropy (Chen et al. 2020, "A Simple
// Framework for Contrastive Learning of Visual Representations"), as Bolts' `nt_xent_loss`
// (../../../shared/spec/LOSSES.md "nt-xent").
//
// out = concat(out_1, out_2) (2b, d); logit = out·outᵀ / temperature;
// loss = mean_k [ logsumexp_{j≠k} logit[k, j] − p_k ], p_k = logit[k, partner(k)], partner(k) = (k + b) mod 2b.
// The positive stays in the denominator (2b − 1 terms), by Bolts' design, so each row is
// log(e^{p_k} + e^{n_k}) − p_k = softplus(n_k − p_k) with n_k the logsumexp over j ∉ {k, partner(k)}.
// **fix**: Bolts exponentiates before summing (inf/NaN for large logits) and subtracts
// e^{1/temperature} for the self term (exact only for unit rows); here self and partner are
// masked with −Infinity before the logsumexp and softplus.ts keeps tiny losses (dominant
// positives) at full relative precision.
import * as tf from '@tensorflow/tfjs'
import { matMul } from './mat-mul.ts'
import { LossServerError } from '../errors.ts'
import type { HostTensor } from '../tensor.ts'
import { ntXentConfig, ntXentOptions, type NtXentConfig, type NtXentOptions } from '../../schemas/kinds/nt-xent.ts'
import { gatherRows } from './gather-rows.ts'
import { softplus } from './softplus.ts'
import { checkBatch, checkTensor, formatShape, noParams, sameShape, tensorInput } from './input-checks.ts'
import type { CommonOptions, EvalResult, Inputs, Params, TaskKind } from './types.ts'
import { runWithGrads } from './run-with-grads.ts'

type Options = CommonOptions & NtXentOptions

/** Rows x / max(‖x‖, 1e-12), as torch.nn.functional.normalize (zero rows stay zero). */
function l2NormalizeRows (x: tf.Tensor2D): tf.Tensor2D {
  const sq = tf.sum(tf.square(x), 1, true)
  return tf.mul(x, tf.rsqrt(tf.clipByValue(sq, 1e-24, 3.4e38))) as tf.Tensor2D
}

/** Flat indices k·2b + partner(k) of the positives in the (2b, 2b) logit matrix. */
function positiveCells (b: number): Int32Array {
  const n = 2 * b
  const cells = new Int32Array(n)
  for (let k = 0; k < n; k++) cells[k] = k * n + ((k + b) % n)
  return cells
}

/** (2b, 2b) additive mask: −Infinity on self and partner cells, 0 elsewhere (the negatives). */
function negativesMask (b: number): tf.Tensor2D {
  const n = 2 * b
  const m = new Float32Array(n * n)
  for (let k = 0; k < n; k++) { m[k * (n + 1)] = -Infinity; m[k * n + ((k + b) % n)] = -Infinity }
  return tf.tensor2d(m, [n, n], 'float32')
}

export function ntXentLoss (out1: tf.Tensor2D, out2: tf.Tensor2D, temperature: number, normalize: boolean): tf.Scalar {
  const b = out1.shape[0]
  const n = 2 * b
  const a = normalize ? l2NormalizeRows(out1) : out1
  const c = normalize ? l2NormalizeRows(out2) : out2
  // Scale one operand by 1/temperature: n·d multiplies instead of n·n.
  const out = tf.concat([a, c], 0)
  const logits = matMul(tf.mul(out, 1 / temperature), out, false, true) // (2b, 2b)
  const pos = gatherRows(tf.reshape(logits, [n * n, 1]), positiveCells(b)) // (2b, 1)
  const neg = tf.logSumExp(tf.add(logits, negativesMask(b)), 1, true) // (2b, 1)
  return tf.mean(softplus(tf.sub(neg, pos))) as tf.Scalar
}

export const ntXent: TaskKind<NtXentConfig, Options> = {
  name: 'nt-xent',
  configSchema: ntXentConfig,
  optionsSchema: ntXentOptions,
  inputs: { out_1: 'tensor', out_2: 'tensor' },
  hasParams: false,

  check (config, inputs, params, options) {
    noParams('nt-xent', params)
    const o1 = tensorInput('nt-xent', inputs, 'out_1')
    const o2 = tensorInput('nt-xent', inputs, 'out_2')
    checkTensor(o1, ['inputs', 'out_1'], 2, '(b, d)')
    checkTensor(o2, ['inputs', 'out_2'], 2, '(b, d)')
    if (!sameShape(o1.shape, o2.shape)) {
      throw new LossServerError('shape_mismatch', `inputs.out_2 has shape ${formatShape(o2.shape)} but inputs.out_1 has shape ${formatShape(o1.shape)}; they must be equal`, ['inputs', 'out_2', 'shape'])
    }
    checkBatch(o1.shape[0], ['inputs', 'out_1'])
    void config
    void options
  },

  evaluate (config, inputs, _params, options): EvalResult {
    const o1 = inputs.out_1 as HostTensor
    const o2 = inputs.out_2 as HostTensor
    const normalize = options.normalize ?? false
    const r = runWithGrads([o1, o2], options.gradients !== false, ([x1, x2]) => {
      return { loss: ntXentLoss(x1 as tf.Tensor2D, x2 as tf.Tensor2D, config.temperature, normalize) }
    })
    return {
      loss: r.loss,
      terms: {},
      ...(r.grads ? { grads: { out_1: r.grads[0], out_2: r.grads[1] } } : {})
    }
  }
}
