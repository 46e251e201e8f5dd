// Which backends exist and which are installed, without loading tfjs: the main thread asks
// (src/config.ts, src/pool/placement.ts) and only workers activate one (backend.ts).
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

export const BACKENDS = ['auto', 'tensorflow', 'tensorflow-gpu', 'wasm', 'cpu'] as const
export type BackendChoice = typeof BACKENDS[number]
export type ConcreteBackend = Exclude<BackendChoice, 'auto'>

export class BackendUnavailableError extends Error {
  constructor (readonly backend: BackendChoice, why: string) {
    super(`backend '${backend}' is not available: ${why}`)
    this.name = 'BackendUnavailableError'
  }
}

const require = createRequire(import.meta.url)

/** Whether the native addon of a tfjs-node package has been built (it may still fail to load). */
export function addonBuilt (pkg: string): boolean {
  try {
    const dir = path.dirname(require.resolve(`${pkg}/package.json`))
    return fs.existsSync(path.join(dir, 'lib', 'napi-v8', 'tfjs_binding.node'))
  } catch {
    return false
  }
}

/** Backends that can be activated in this installation, without activating them. */
export function installedBackends (): ConcreteBackend[] {
  const out: ConcreteBackend[] = []
  if (addonBuilt('@tensorflow/tfjs-node')) out.push('tensorflow')
  if (addonBuilt('@tensorflow/tfjs-node-gpu')) out.push('tensorflow-gpu')
  out.push('wasm', 'cpu')
  return out
}
