// Every kind the server computes, by its wire name (../shared/spec/API.md `kind`).
import type { KindName, TaskKind } from './types.ts'
import { cpc } from './cpc.ts'
import { featureMapContrastive } from './feature-map-contrastive.ts'
import { amdimNce } from './amdim-nce.ts'
import { ntXent } from './nt-xent.ts'

const KINDS: Record<KindName, TaskKind> = {
  'feature-map-contrastive': featureMapContrastive,
  cpc,
  'amdim-nce': amdimNce,
  'nt-xent': ntXent
}

export function getKind (name: string): TaskKind | undefined {
  return Object.prototype.hasOwnProperty.call(KINDS, name) ? KINDS[name as KindName] : undefined
}

export function kindNames (): KindName[] {
  return Object.keys(KINDS) as KindName[]
}
