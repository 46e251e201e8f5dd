// cpc's parameters: the exact PyTorch state_dict() of Bolts' CPCTask
// (pl_bolts/losses/self_supervised_learning.py: target_cnn, pred_cnn, context_cnn, registered in
// that order; pl_bolts/models/vision/pixel_cnn.py: each block is
// nn.Sequential(conv 1x1, ReLU, conv 1x3, ConstantPad2d, conv 2x1, ReLU, conv 1x1), so the
// convolutions sit at indices 0, 2, 4, 6). Weights use PyTorch's (out, in, kh, kw) layout.
// Pure JavaScript: the main thread validates with it before any tfjs work.
import type { CpcConfig } from '../../schemas/kinds/cpc.ts'
import { LossServerError } from '../errors.ts'
import { sizeOf } from '../tensor.ts'
import { Prng } from './prng.ts'
import type { Params } from './types.ts'

/** The config fields that decide the parameters (step_weighting and embed_scale do not). */
export type CpcShapeConfig = Pick<CpcConfig, 'num_input_channels' | 'target_dim' | 'hidden_channels' | 'num_blocks'>

export interface ParamSpec {
  /** state_dict() key */
  name: string
  /** PyTorch shape: (out, in, kh, kw) for weights, (out) for biases */
  shape: number[]
  /** in * kh * kw of the convolution it belongs to (PyTorch's fan_in, also for the bias) */
  fanIn: number
}

/** The four convolutions of one PixelCNN block by Sequential index: [index, out, in, kh, kw]. */
function blockConvs (c: number, h: number): Array<[number, number, number, number, number]> {
  return [[0, h, c, 1, 1], [2, h, h, 1, 3], [4, h, h, 2, 1], [6, c, h, 1, 1]]
}

function conv (prefix: string, out: number, inp: number, kh: number, kw: number): ParamSpec[] {
  const fanIn = inp * kh * kw
  return [{ name: `${prefix}.weight`, shape: [out, inp, kh, kw], fanIn }, { name: `${prefix}.bias`, shape: [out], fanIn }]
}

/** Every parameter in state_dict() order. */
export function cpcParamSpecs (config: CpcShapeConfig): ParamSpec[] {
  const { num_input_channels: c, target_dim: t, hidden_channels: h, num_blocks: k } = config
  const specs = [...conv('target_cnn', t, c, 1, 1), ...conv('pred_cnn', t, c, 1, 1)]
  for (let b = 0; b < k; b++) {
    for (const [i, out, inp, kh, kw] of blockConvs(c, h)) specs.push(...conv(`context_cnn.blocks.${b}.${i}`, out, inp, kh, kw))
  }
  return specs
}

/** Total number of scalars: 2693·C + 1,642,368 at the defaults (LOSSES.md "cpc"). */
export function cpcParamCount (config: CpcShapeConfig): number {
  let n = 0
  for (const s of cpcParamSpecs(config)) n += sizeOf(s.shape)
  return n
}

/**
 * PyTorch's default init of nn.Conv2d (reset_parameters: kaiming_uniform_ with a = sqrt(5) for
 * the weight, which reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the
 * bias). Draw order, so a seed always gives the same parameters: parameters in state_dict()
 * order, elements of each in row-major order, one Prng.uniform(-bound, bound) per element
 * (src/tasks/prng.ts), rounded to float32.
 */
export function initParams (config: CpcShapeConfig, seed: number): Params {
  const prng = new Prng(seed)
  const out: Params = {}
  for (const s of cpcParamSpecs(config)) {
    const bound = 1 / Math.sqrt(s.fanIn)
    const data = new Float32Array(sizeOf(s.shape))
    for (let i = 0; i < data.length; i++) data[i] = prng.uniform(-bound, bound)
    out[s.name] = { shape: [...s.shape], data }
  }
  return out
}

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`

/**
 * Checks that `params` holds exactly the parameters of `config` with their PyTorch shapes.
 * Paths point into the request: ['params'], ['params', name], ['params', name, 'shape'].
 */
export function checkCpcParams (config: CpcShapeConfig, params: Params | undefined): void {
  const specs = cpcParamSpecs(config)
  if (params === undefined || params === null || typeof params !== 'object') {
    throw new LossServerError('invalid_body', `cpc needs 'params': the ${specs.length} tensors of CPCTask.state_dict() (${specs[0].name}, ...)`, ['params'])
  }
  const expected = new Map(specs.map(s => [s.name, s]))
  for (const name of Object.keys(params)) {
    if (!expected.has(name)) {
      throw new LossServerError('invalid_body', `unknown cpc parameter '${name}' for num_blocks ${config.num_blocks}; expected the state_dict() keys target_cnn.*, pred_cnn.*, context_cnn.blocks.{0..${config.num_blocks - 1}}.{0,2,4,6}.{weight,bias}`, ['params', name])
    }
  }
  for (const s of specs) {
    const t = params[s.name]
    if (t === undefined) throw new LossServerError('invalid_body', `missing cpc parameter '${s.name}' (shape ${fmt(s.shape)})`, ['params', s.name])
    if (!Array.isArray(t.shape) || t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i])) {
      const got = Array.isArray(t.shape) ? fmt(t.shape) : String(t.shape)
      throw new LossServerError('shape_mismatch', `cpc parameter '${s.name}' must have shape ${fmt(s.shape)} for this config, got ${got}`, ['params', s.name, 'shape'])
    }
    if (!(t.data instanceof Float32Array) || t.data.length !== sizeOf(s.shape)) {
      throw new LossServerError('invalid_tensor', `cpc parameter '${s.name}' of shape ${fmt(s.shape)} needs ${sizeOf(s.shape)} float32 elements, got ${t.data?.length ?? 'none'}`, ['params', s.name, 'data'])
    }
  }
}
