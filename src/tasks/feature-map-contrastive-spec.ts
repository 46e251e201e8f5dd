// feature-map-contrastive's validation (no tfjs: the main thread loads it); the math is in
// feature-map-contrastive.ts and feature-map-pass.ts, the random choices in feature-map-plan.ts.
import { featureMapContrastiveConfig, featureMapContrastiveOptions, type FeatureMapContrastiveConfig, type FeatureMapContrastiveOptions } from '../../schemas/kinds/feature-map-contrastive.ts'
import { checkRequest } from './feature-map-plan.ts'
import { noParams } from './input-checks.ts'
import type { CommonOptions, KindSpec } from './types.ts'

export type FeatureMapContrastiveKindOptions = CommonOptions & FeatureMapContrastiveOptions

export const featureMapContrastiveSpec: KindSpec<FeatureMapContrastiveConfig, FeatureMapContrastiveKindOptions> = {
  name: 'feature-map-contrastive',
  configSchema: featureMapContrastiveConfig,
  optionsSchema: featureMapContrastiveOptions,
  inputs: { anchor: 'list', positive: 'list' },
  hasParams: false,

  check (config, inputs, params, options) {
    noParams('feature-map-contrastive', params)
    checkRequest(config, inputs, options)
  }
}
