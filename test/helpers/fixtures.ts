// Reads the shared reference cases from ../shared/fixtures (never edited here) and compares
// results with the tolerances of ../shared/spec/LOSSES.md "Fixtures".
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { HostTensor } from '../../src/tensor.ts'

export const FIXTURE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures')

export interface JsonTensor { dtype: string, shape: number[], data: number[] }
export interface Fixture {
  name: string
  kind: string
  request: { config?: Record<string, unknown>, inputs: Record<string, JsonTensor | JsonTensor[]>, params?: Record<string, JsonTensor>, options?: Record<string, unknown> }
  expected: {
    loss: number
    terms?: Record<string, number | number[]>
    grads: Record<string, JsonTensor | JsonTensor[]>
    param_grads_sampled?: Array<{ name: string, index: number, value: number }>
  }
  file: string
}

export function loadFixtures (kind?: string): Fixture[] {
  return fs.readdirSync(FIXTURE_DIR).filter(f => f.endsWith('.json')).sort()
    .map(f => ({ ...JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, f), 'utf8')), file: f }) as Fixture)
    .filter(f => kind === undefined || f.kind === kind)
}

export function toHost (t: JsonTensor): HostTensor {
  return { shape: [...t.shape], data: Float32Array.from(t.data) }
}

export function toHostInputs (inputs: Record<string, JsonTensor | JsonTensor[]>): Record<string, HostTensor | HostTensor[]> {
  const out: Record<string, HostTensor | HostTensor[]> = {}
  for (const [k, v] of Object.entries(inputs)) out[k] = Array.isArray(v) ? v.map(toHost) : toHost(v)
  return out
}

/** |a - b| <= rel * |b| (plus a tiny absolute floor for values that are 0) */
export function relClose (a: number, b: number, rel = 1e-5): boolean {
  return Math.abs(a - b) <= rel * Math.abs(b) + 1e-12
}

/** ||g - ref|| / ||ref|| (ref all zeros: ||g||) */
export function relErrNorm (g: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (g.length !== ref.length) return Infinity
  let num = 0
  let den = 0
  for (let i = 0; i < ref.length; i++) {
    const d = g[i] - ref[i]
    num += d * d
    den += ref[i] * ref[i]
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den)
}

/** Sampled parameter gradients: |g - ref| <= 1e-6 + 1e-3 |ref| */
export function paramGradClose (g: number, ref: number): boolean {
  return Math.abs(g - ref) <= 1e-6 + 1e-3 * Math.abs(ref)
}
