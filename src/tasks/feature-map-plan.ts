// What a feature-map-contrastive evaluation compares: the maps' shapes, the resolved
// [ai, pi] pair of each comparison and the sampled source locations of each direction
// (../../../shared/spec/LOSSES.md "feature-map-contrastive"). Pure JS: `check` validates
// everything that does not depend on random draws; `plan` draws and validates the rest.
//
// Draw order (one Prng seeded with options.seed, else a fresh random seed):
//   1. unless options.pairs is given: for each comparison in order, resolve an 'r' of ai,
//      then an 'r' of pi, each with prng.int(M);
//   2. unless options.locations is given: for each comparison in order, direction 1 then
//      (when bidirectional) direction 2, b draws prng.int(h·w) of the sampled map
//      (anchor[ai] for direction 1, positive[ai] for direction 2; same shape).
// The draws happen in JavaScript, so the same seed gives the same choices on every backend.
import { LossServerError } from '../errors.ts'
import type { HostTensor } from '../tensor.ts'
import { parseComparisons, type ComparisonTokens, type FeatureMapContrastiveConfig, type FeatureMapContrastiveOptions } from '../../schemas/kinds/feature-map-contrastive.ts'
import { checkBatch, checkTensor, formatShape, listInput, sameShape } from './input-checks.ts'
import { Prng } from './prng.ts'
import type { Inputs, Sampled } from './types.ts'

/** [b, c, h, w] per map index (anchor[k] and positive[k] share it). */
export type MapShapes = Array<[number, number, number, number]>

export interface Maps { anchor: HostTensor[], positive: HostTensor[], shapes: MapShapes }

/** Ranks, anchor/positive shape equality, shared b >= 2. */
export function checkMaps (inputs: Inputs): Maps {
  const anchor = listInput('feature-map-contrastive', inputs, 'anchor')
  const positive = listInput('feature-map-contrastive', inputs, 'positive')
  anchor.forEach((t, k) => checkTensor(t, ['inputs', 'anchor', k], 4, '(b, c, h, w)'))
  positive.forEach((t, k) => checkTensor(t, ['inputs', 'positive', k], 4, '(b, c, h, w)'))
  if (positive.length !== anchor.length) {
    throw new LossServerError('shape_mismatch', `inputs.positive has ${positive.length} maps but inputs.anchor has ${anchor.length}; they must pair up map for map`, ['inputs', 'positive'])
  }
  positive.forEach((t, k) => {
    if (!sameShape(t.shape, anchor[k].shape)) {
      throw new LossServerError('shape_mismatch', `inputs.positive[${k}] has shape ${formatShape(t.shape)} but inputs.anchor[${k}] has shape ${formatShape(anchor[k].shape)}; they must be equal`, ['inputs', 'positive', k, 'shape'])
    }
  })
  const b = anchor[0].shape[0]
  anchor.forEach((t, k) => {
    if (t.shape[0] !== b) {
      throw new LossServerError('shape_mismatch', `inputs.anchor[${k}] has batch size ${t.shape[0]} (shape ${formatShape(t.shape)}) but inputs.anchor[0] has ${b}; all maps must share b`, ['inputs', 'anchor', k, 'shape'])
    }
  })
  checkBatch(b, ['inputs', 'anchor', 0])
  return { anchor, positive, shapes: anchor.map(t => [...t.shape] as [number, number, number, number]) }
}

/** Parsed comparisons with every fixed index < M. */
export function checkComparisons (config: FeatureMapContrastiveConfig, M: number): ComparisonTokens {
  const parsed = parseComparisons(config.comparisons)
  if (!parsed.ok) throw new LossServerError('invalid_config', parsed.message, ['config', 'comparisons'])
  parsed.tokens.forEach(([ai, pi], k) => {
    for (const idx of [ai, pi]) {
      if (idx !== 'r' && idx >= M) {
        throw new LossServerError('invalid_config', `comparison ${k} '${String(ai)}${String(pi)}' of '${config.comparisons}' uses map ${idx}, but the inputs hold M = ${M} maps (indices 0..${M - 1})`, ['config', 'comparisons'])
      }
    }
  })
  return parsed.tokens
}

/** options.pairs: one per comparison, each index < M, agreeing with every fixed digit. */
function checkPairs (tokens: ComparisonTokens, pairs: Array<[number, number]>, M: number, comparisons: string): void {
  if (pairs.length !== tokens.length) {
    throw new LossServerError('invalid_config', `options.pairs has ${pairs.length} pairs but comparisons '${comparisons}' has ${tokens.length}`, ['options', 'pairs'])
  }
  pairs.forEach((pair, k) => {
    pair.forEach((idx, side) => {
      if (idx >= M) throw new LossServerError('invalid_config', `options.pairs[${k}][${side}] = ${idx} but the inputs hold M = ${M} maps (indices 0..${M - 1})`, ['options', 'pairs', k, side])
      const fixed = tokens[k][side]
      if (fixed !== 'r' && fixed !== idx) {
        throw new LossServerError('invalid_config', `options.pairs[${k}] = [${pair.join(', ')}] contradicts comparison ${k} '${String(tokens[k][0])}${String(tokens[k][1])}' of '${comparisons}' (position ${side} is fixed to ${fixed})`, ['options', 'pairs', k, side])
      }
    })
  })
}

type Partial = Array<[number | null, number | null]>

/** Channel equality of each compared pair whose indices are known. */
function checkChannels (pairs: Partial, shapes: MapShapes): void {
  pairs.forEach(([ai, pi], k) => {
    if (ai === null || pi === null) return
    const ca = shapes[ai][1]
    const cp = shapes[pi][1]
    if (ca !== cp) {
      throw new LossServerError('shape_mismatch', `comparison ${k} (${ai}, ${pi}) compares anchor[${ai}] (c = ${ca}) with positive[${pi}] (c = ${cp}); compared maps must have the same number of channels`, ['inputs', 'positive', pi, 'shape'])
    }
  })
}

/** options.locations: [comparison][direction][n], each index < h·w of the sampled map. */
function checkLocations (locations: number[][][], pairs: Partial, shapes: MapShapes, directions: number): void {
  const b = shapes[0][0]
  if (locations.length !== pairs.length) {
    throw new LossServerError('invalid_config', `options.locations has ${locations.length} entries but there are ${pairs.length} comparisons`, ['options', 'locations'])
  }
  locations.forEach((perDir, k) => {
    if (perDir.length !== directions) {
      throw new LossServerError('invalid_config', `options.locations[${k}] has ${perDir.length} directions but ${directions === 2 ? 'bidirectional comparisons have 2' : 'one-way comparisons (bidirectional: false) have 1'}`, ['options', 'locations', k])
    }
    perDir.forEach((locs, dir) => {
      if (locs.length !== b) {
        throw new LossServerError('invalid_config', `options.locations[${k}][${dir}] has ${locs.length} locations but the batch size is b = ${b}`, ['options', 'locations', k, dir])
      }
      const ai = pairs[k][0]
      if (ai === null) return
      const [, , h, w] = shapes[ai]
      locs.forEach((loc, n) => {
        if (loc >= h * w) {
          const map = dir === 0 ? 'anchor' : 'positive'
          throw new LossServerError('invalid_config', `options.locations[${k}][${dir}][${n}] = ${loc} but the sampled map ${map}[${ai}] is ${h}x${w} (flat indices y*w + x in 0..${h * w - 1})`, ['options', 'locations', k, dir, n])
        }
      })
    })
  })
}

/** Everything that does not need a draw; a request that passes may still fail `plan` only through 'r'. */
export function checkRequest (config: FeatureMapContrastiveConfig, inputs: Inputs, options: FeatureMapContrastiveOptions): Maps {
  const maps = checkMaps(inputs)
  const M = maps.shapes.length
  const tokens = checkComparisons(config, M)
  if (options.pairs) checkPairs(tokens, options.pairs, M, config.comparisons)
  const known: Partial = options.pairs
    ? options.pairs.map(([a, p]) => [a, p])
    : tokens.map(([a, p]) => [a === 'r' ? null : a, p === 'r' ? null : p])
  checkChannels(known, maps.shapes)
  if (options.locations) checkLocations(options.locations, known, maps.shapes, config.bidirectional ? 2 : 1)
  return maps
}

/** Resolves every random choice (see the draw order above) and validates the result. */
export function plan (config: FeatureMapContrastiveConfig, shapes: MapShapes, options: FeatureMapContrastiveOptions, seed: number): Sampled {
  const M = shapes.length
  const tokens = checkComparisons(config, M)
  const prng = new Prng(seed)
  const directions = config.bidirectional ? 2 : 1
  let pairs: Array<[number, number]>
  if (options.pairs) {
    checkPairs(tokens, options.pairs, M, config.comparisons)
    pairs = options.pairs.map(([a, p]) => [a, p])
  } else {
    pairs = tokens.map(([a, p]) => {
      const ai = a === 'r' ? prng.int(M) : a
      const pi = p === 'r' ? prng.int(M) : p
      return [ai, pi]
    })
  }
  checkChannels(pairs, shapes)
  let locations: number[][][]
  if (options.locations) {
    checkLocations(options.locations, pairs, shapes, directions)
    locations = options.locations.map(perDir => perDir.map(locs => [...locs]))
  } else {
    const b = shapes[0][0]
    locations = pairs.map(([ai]) => {
      const hw = shapes[ai][2] * shapes[ai][3]
      const perDir: number[][] = []
      for (let dir = 0; dir < directions; dir++) {
        const locs: number[] = []
        for (let n = 0; n < b; n++) locs.push(prng.int(hw))
        perDir.push(locs)
      }
      return perDir
    })
  }
  return { pairs, locations, seed }
}
