// cpc: Bolts' CPCTask with its PixelCNN context network (../shared/spec/LOSSES.md "cpc").
// Defaults are Bolts' (pl_bolts/losses/self_supervised_learning.py CPCTask.__init__ and
// pl_bolts/models/vision/pixel_cnn.py PixelCNN.__init__).
import { z } from 'zod'

const positiveInt = () => z.number().int().min(1)

export const cpcConfig = z.object({
  num_input_channels: positiveInt().describe('C: channels of the feature map z (b, C, h, w); required'),
  target_dim: positiveInt().default(64).describe('T: channels of the target and prediction 1x1 convolutions'),
  embed_scale: z.number().default(0.1).describe('factor on the predictions before the dot products'),
  hidden_channels: positiveInt().default(256).describe('H: hidden channels of each PixelCNN block'),
  num_blocks: positiveInt().default(5).describe('K: residual blocks of the PixelCNN'),
  step_weighting: z.enum(['bolts', 'uniform']).default('bolts')
    .describe("'bolts': loss = sum of i * CE_i (what Bolts' double loop returns); 'uniform': sum of CE_i")
}).strict()

export type CpcConfig = z.output<typeof cpcConfig>
export type CpcConfigInput = z.input<typeof cpcConfig>

/** cpc has no options beyond the common ones (schemas/options.ts). */
export const cpcOptions = z.object({}).strict()
export type CpcOptions = z.output<typeof cpcOptions>
