// cpc's validation (no tfjs: the main thread loads it); the math is in cpc.ts and pixel-cnn.ts.
import { LossServerError } from '../errors.ts'
import { cpcConfig, cpcOptions, type CpcConfig } from '../../schemas/kinds/cpc.ts'
import { sizeOf } from '../tensor.ts'
import { checkCpcParams } from './cpc-params.ts'
import type { CommonOptions, Inputs, KindSpec, Params } from './types.ts'

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`

/** Checks z against the config (pure JavaScript, no tfjs); then the parameters. */
export function checkCpc (config: CpcConfig, inputs: Inputs, params: Params | undefined): void {
  const z = inputs.z
  if (z === undefined || Array.isArray(z)) throw new LossServerError('invalid_body', 'cpc needs inputs.z: one tensor (b, c, h, w)', ['inputs', 'z'])
  const path = ['inputs', 'z', 'shape']
  if (z.shape.length !== 4) throw new LossServerError('invalid_tensor', `cpc: inputs.z must have rank 4 (b, c, h, w), got shape ${fmt(z.shape)}`, path)
  if (z.data.length !== sizeOf(z.shape)) throw new LossServerError('invalid_tensor', `cpc: inputs.z of shape ${fmt(z.shape)} needs ${sizeOf(z.shape)} elements, got ${z.data.length}`, ['inputs', 'z', 'data'])
  const [b, c, h, w] = z.shape
  if (b < 1) throw new LossServerError('shape_mismatch', `cpc needs a batch of at least 1, got inputs.z shape ${fmt(z.shape)}`, path)
  if (c !== config.num_input_channels) throw new LossServerError('shape_mismatch', `cpc: inputs.z has ${c} channels (shape ${fmt(z.shape)}) but config.num_input_channels is ${config.num_input_channels}`, path)
  if (h < 3 || w < 3) throw new LossServerError('shape_mismatch', `cpc needs h >= 3 and w >= 3 (the PixelCNN's 1x3 convolution and at least one prediction step i <= h-2), got h=${h}, w=${w} in inputs.z shape ${fmt(z.shape)}`, path)
  checkCpcParams(config, params)
}

export const cpcSpec: KindSpec<CpcConfig, CommonOptions> = {
  name: 'cpc',
  configSchema: cpcConfig,
  optionsSchema: cpcOptions,
  inputs: { z: 'tensor' },
  hasParams: true,
  check: (config, inputs, params) => checkCpc(config, inputs, params)
}
