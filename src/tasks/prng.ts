// The seeded PRNG behind every random choice of a kind (feature-map-contrastive's `r` pairs
// and source locations, cpc's parameter init). Draws happen in JavaScript, never in tfjs, so
// the same seed gives the same choices on every backend.
//
// Generator: mulberry32 (Tommy Ettinger's 32-bit state generator, public domain), one
// uint32 per step. Integers in [0, n) use rejection sampling (no modulo bias); floats in
// [0, 1) are uint32 / 2^32. A request without `options.seed` gets a seed drawn from
// crypto.getRandomValues, and the evaluation reports the seed it used.
import { getRandomValues } from 'node:crypto'

export class Prng {
  private state: number
  constructor (readonly seed: number) {
    this.state = seed >>> 0
  }

  /** next uint32 */
  nextUint32 (): number {
    this.state = (this.state + 0x6D2B79F5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }

  /** uniform integer in [0, n), n >= 1 */
  int (n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`Prng.int: n must be an integer in [1, 2^32], got ${n}`)
    const limit = Math.floor(2 ** 32 / n) * n
    let x = this.nextUint32()
    while (x >= limit) x = this.nextUint32()
    return x % n
  }

  /** uniform float in [0, 1) */
  float (): number {
    return this.nextUint32() / 2 ** 32
  }

  /** uniform float in [lo, hi) */
  uniform (lo: number, hi: number): number {
    return lo + (hi - lo) * this.float()
  }
}

export function randomSeed (): number {
  return getRandomValues(new Uint32Array(1))[0]
}
