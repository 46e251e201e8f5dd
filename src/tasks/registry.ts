// Every kind the server computes, by its wire name (../shared/spec/API.md `kind`): what the
// main thread needs of each (schemas, inputs, checks) and nothing that loads tfjs, which
// only the workers load (src/tasks/compute-registry.ts adds each kind's evaluate): tfjs's
// ~43 MB of heap on the main thread made every one of its garbage collections ~3x slower.
import type { KindName, KindSpec } from './types.ts'
import { cpcSpec } from './cpc-spec.ts'
import { featureMapContrastiveSpec } from './feature-map-contrastive-spec.ts'
import { amdimNceSpec } from './amdim-nce-spec.ts'
import { ntXentSpec } from './nt-xent-spec.ts'

const KINDS: Record<KindName, KindSpec> = {
  'feature-map-contrastive': featureMapContrastiveSpec,
  cpc: cpcSpec,
  'amdim-nce': amdimNceSpec,
  'nt-xent': ntXentSpec
}

export function getKind (name: string): KindSpec | undefined {
  return Object.prototype.hasOwnProperty.call(KINDS, name) ? KINDS[name as KindName] : undefined
}

export function kindNames (): KindName[] {
  return Object.keys(KINDS) as KindName[]
}
