// Every kind the server computes, by its wire name (../shared/spec/API.md `kind`).
import type { KindName, TaskKind } from './types.ts'
import { cpc } from './cpc.ts'

const KINDS: Partial<Record<KindName, TaskKind>> = {
  // each kind's file adds itself here: 'nt-xent': ntXent, ...
  cpc,
}

export function getKind (name: string): TaskKind | undefined {
  return Object.prototype.hasOwnProperty.call(KINDS, name) ? KINDS[name as KindName] : undefined
}

export function kindNames (): KindName[] {
  return Object.keys(KINDS) as KindName[]
}
