// Every kind with its evaluate: what a worker computes with (src/compute/compute-request.ts,
// src/store/held.ts). Loads tfjs; the main thread uses src/tasks/registry.ts instead.
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

export function getTaskKind (name: string): TaskKind | undefined {
  return Object.prototype.hasOwnProperty.call(KINDS, name) ? KINDS[name as KindName] : undefined
}
