// cpc: Bolts' CPCTask (pl_bolts/losses/self_supervised_learning.py) with its PixelCNN context
// network (src/tasks/pixel-cnn.ts); math in ../shared/spec/LOSSES.md "cpc". CPC v2: Hénaff et
// al. 2019, "Data-Efficient Image Recognition with Contrastive Predictive Coding".
//
// Bolts' forward, for each step i, scores predictions from rows 0..h-i-2 against every one of
// the b·h·w targets and takes the softmax cross-entropy with the target i+1 rows below. Two
// facts make this cheap here:
//  - a prediction row's logits do not depend on i, so one (b·(h-2)·w) x (b·h·w) matrix (only
//    rows 0..h-3 ever predict) gives every row's log-sum-exp once;
//  - the label logit of step i is <pred(n, y, x), target(n, y+i+1, x)>: an elementwise
//    product of two shifted slices, no label matrix and no b x b masks.
// Bolts' double loop evaluates step i exactly i times and drops the empty step h-1 (NaN), so
// its loss is sum_i i·CE_i ('bolts'); we compute each CE_i once.
import * as tf from '@tensorflow/tfjs'
import { matMul } from './mat-mul.ts'
import type { CpcConfig } from '../../schemas/kinds/cpc.ts'
import { LossServerError } from '../errors.ts'
import type { HostTensor } from '../tensor.ts'
import { cpcParamSpecs } from './cpc-params.ts'
import { cpcSpec } from './cpc-spec.ts'
import { toRows } from './layout.ts'
import { pixelCnn, pixelCnnBlocks, toMatConv } from './pixel-cnn.ts'
import type { CommonOptions, EvalResult, TaskKind } from './types.ts'

/** Parameters already on the active backend, by state_dict() key, PyTorch layout. */
export type ParamTensors = Record<string, tf.Tensor>

export interface CpcStep { offset: number, loss: number, weight: number }

/** Weight of step i = 1..h-2: i for 'bolts', 1 for 'uniform'. */
export function stepWeights (weighting: CpcConfig['step_weighting'], h: number): number[] {
  const out: number[] = []
  for (let i = 1; i <= h - 2; i++) out.push(weighting === 'bolts' ? i : 1)
  return out
}

/**
 * Row-wise log-sum-exp of a matrix, (m, n) -> (m), with the gradient written out as
 * dy · softmax (tf.logSumExp would differentiate through its max shift as well).
 */
const logSumExpRows = tf.customGrad(((x: tf.Tensor2D, save: tf.GradSaveFunc) => {
  const m = tf.max(x, 1, true)
  const v = tf.add(tf.log(tf.sum(tf.exp(tf.sub(x, m)), 1, true)), m)
  save([x, v])
  return {
    value: tf.reshape(v, [-1]),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(tf.reshape(dy, [-1, 1]), tf.exp(tf.sub(saved[0], saved[1])))
  }
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor2D) => tf.Tensor1D

export interface CpcForward {
  /** weighted sum of the step losses */
  loss: tf.Scalar
  /** CE_i for i = 1..h-2 */
  steps: tf.Tensor1D
}

/** The forward pass on z (b, C, h, w) NCHW; h >= 3, w >= 3. Call inside a tidy scope. */
export function cpcForward (config: CpcConfig, z: tf.Tensor, params: ParamTensors): CpcForward {
  const [b, c, h, w] = z.shape
  const t = config.target_dim
  // NHWC rows (layout.ts: on tensorflow an exact identity product, faster than Transpose there)
  const rows = toRows(z)
  const x = tf.reshape(rows, [b, h, w, c]) as tf.Tensor4D
  const head = (name: string) => toMatConv(params[`${name}.weight`], params[`${name}.bias`])

  const target = head('target_cnn')
  const targets = tf.add(matMul(rows, target.w, false, true), target.b) as tf.Tensor2D

  const context = pixelCnn(x, pixelCnnBlocks(params, config.num_blocks))
  const top = h - 2 // rows 0..h-3 are the only ones that ever predict
  const pred = head('pred_cnn')
  const ctxTop = tf.reshape(tf.slice(context, [0, 0, 0, 0], [b, top, w, c]), [b * top * w, c]) as tf.Tensor2D
  const preds = tf.mul(tf.add(matMul(ctxTop, pred.w, false, true), pred.b), config.embed_scale) as tf.Tensor2D

  const lse = tf.reshape(logSumExpRows(matMul(preds, targets, false, true)), [b, top, w])
  const preds4 = tf.reshape(preds, [b, top, w, t])
  const targets4 = tf.reshape(targets, [b, h, w, t])
  const ce: tf.Scalar[] = []
  for (let i = 1; i <= h - 2; i++) {
    const rows = h - i - 1
    const pos = tf.sum(tf.mul(tf.slice(preds4, [0, 0, 0, 0], [b, rows, w, t]), tf.slice(targets4, [0, i + 1, 0, 0], [b, rows, w, t])), 3)
    ce.push(tf.mean(tf.sub(tf.slice(lse, [0, 0, 0], [b, rows, w]), pos)))
  }
  const steps = tf.stack(ce) as tf.Tensor1D
  const loss = tf.sum(tf.mul(steps, tf.tensor1d(stepWeights(config.step_weighting, h)))) as tf.Scalar
  return { loss, steps }
}

export interface CpcTensors extends CpcForward {
  /** d(loss)/dz, (b, C, h, w) */
  z?: tf.Tensor
  /** d(loss)/d(param), PyTorch layout, every parameter */
  params?: ParamTensors
}

/**
 * Loss, step losses and the asked-for gradients as tensors (for callers that keep working on
 * the backend, e.g. an optimizer step on worker-held parameters). `params` must already have
 * passed checkCpcParams. The caller owns the results: call it inside tf.tidy or dispose them.
 */
export function cpcLossAndGrads (config: CpcConfig, z: tf.Tensor, params: ParamTensors, want: { z: boolean, params: boolean }): CpcTensors {
  if (!want.z && !want.params) return cpcForward(config, z, params)
  const names = cpcParamSpecs(config).map(s => s.name)
  const xs = [...(want.z ? [z] : []), ...(want.params ? names.map(n => params[n]) : [])]
  let steps: tf.Tensor1D | undefined
  try {
    // The gradient's own scope frees everything the forward made except the loss; keep the
    // step losses alive past it and free them here.
    const { value, grads } = tf.valueAndGrads(() => {
      const r = cpcForward(config, z, params)
      steps = tf.keep(r.steps)
      return r.loss
    })(xs)
    const out: CpcTensors = { loss: value as tf.Scalar, steps: steps!.clone() }
    let k = 0
    if (want.z) out.z = grads[k++]
    if (want.params) out.params = Object.fromEntries(names.map(n => [n, grads[k++]]))
    return out
  } finally {
    steps?.dispose()
  }
}

function toHost (t: tf.Tensor): HostTensor {
  return { shape: [...t.shape], data: t.dataSync() as Float32Array }
}

/**
 * One evaluation with parameters that are already tensors on the active backend (checked
 * once, e.g. held by a task instance between calls). The live tensor count is unchanged after.
 */
export function evaluateCpc (config: CpcConfig, z: HostTensor, params: ParamTensors, options: Pick<CommonOptions, 'gradients' | 'param_grads'>): EvalResult {
  const want = { z: options.gradients !== false, params: options.param_grads === true }
  const out = tf.tidy(() => cpcLossAndGrads(config, tf.tensor(z.data, z.shape, 'float32'), params, want) as unknown as tf.TensorContainerObject) as unknown as CpcTensors
  try {
    const weights = stepWeights(config.step_weighting, z.shape[2])
    const ce = out.steps.dataSync()
    const result: EvalResult = {
      loss: out.loss.dataSync()[0],
      terms: { steps: weights.map((weight, i) => ({ offset: i + 1, loss: ce[i], weight })) satisfies CpcStep[] }
    }
    if (out.z) result.grads = { z: toHost(out.z) }
    if (out.params) result.paramGrads = Object.fromEntries(Object.entries(out.params).map(([n, g]) => [n, toHost(g)]))
    return result
  } finally {
    tf.dispose(out as unknown as tf.TensorContainer)
  }
}

export { checkCpc } from './cpc-spec.ts'

export const cpc: TaskKind<CpcConfig, CommonOptions> = {
  ...cpcSpec,
  evaluate (config, inputs, params, options) {
    if (params === undefined) throw new LossServerError('invalid_body', "cpc needs 'params' (run check first)", ['params'])
    const tensors: ParamTensors = {}
    try {
      for (const [name, p] of Object.entries(params ?? {})) tensors[name] = tf.tensor(p.data, p.shape, 'float32')
      return evaluateCpc(config, inputs.z as HostTensor, tensors, options)
    } finally {
      tf.dispose(Object.values(tensors))
    }
  }
}
