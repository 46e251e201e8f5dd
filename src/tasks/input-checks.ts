// Pure-JS checks of decoded inputs shared by the contrastive kinds (no tfjs): each failure is a
// LossServerError with the API.md code and a path into the request body.
import { LossServerError, formatPath, type RequestPath } from '../errors.ts'
import { sizeOf, type HostTensor } from '../tensor.ts'
import type { Inputs, KindName, Params } from './types.ts'

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`

export function noParams (kind: KindName, params: Params | undefined): void {
  if (params !== undefined) throw new LossServerError('invalid_body', `kind '${kind}' takes no params`, ['params'])
}

function isTensor (v: unknown): v is HostTensor {
  return typeof v === 'object' && v !== null && Array.isArray((v as HostTensor).shape) && (v as HostTensor).data instanceof Float32Array
}

export function tensorInput (kind: KindName, inputs: Inputs, name: string): HostTensor {
  const v = inputs?.[name]
  if (v === undefined) throw new LossServerError('invalid_body', `inputs.${name} is required for kind '${kind}'`, ['inputs', name])
  if (!isTensor(v)) throw new LossServerError('invalid_body', `inputs.${name} must be one tensor for kind '${kind}'`, ['inputs', name])
  return v
}

export function listInput (kind: KindName, inputs: Inputs, name: string): HostTensor[] {
  const v = inputs?.[name]
  if (v === undefined) throw new LossServerError('invalid_body', `inputs.${name} is required for kind '${kind}'`, ['inputs', name])
  if (!Array.isArray(v)) throw new LossServerError('invalid_body', `inputs.${name} must be a list of tensors for kind '${kind}'`, ['inputs', name])
  if (v.length === 0) throw new LossServerError('invalid_body', `inputs.${name} must hold at least one tensor for kind '${kind}', got an empty list`, ['inputs', name])
  v.forEach((t, k) => { if (!isTensor(t)) throw new LossServerError('invalid_body', `inputs.${name}[${k}] must be a tensor`, ['inputs', name, k]) })
  return v
}

/** Rank, positive dimensions, and data length; `what` names the expected layout, e.g. '(b, c, h, w)'. */
export function checkTensor (t: HostTensor, path: RequestPath, rank: number, what: string): void {
  const where = formatPath(path)
  if (t.shape.length !== rank) {
    throw new LossServerError('invalid_tensor', `${where} must have rank ${rank} ${what}, got shape ${fmt(t.shape)}`, [...path, 'shape'])
  }
  if (t.shape.some(d => !Number.isInteger(d) || d < 1)) {
    throw new LossServerError('invalid_tensor', `${where} must have every dimension >= 1 ${what}, got shape ${fmt(t.shape)}`, [...path, 'shape'])
  }
  if (t.data.length !== sizeOf(t.shape)) {
    throw new LossServerError('invalid_tensor', `${where} has shape ${fmt(t.shape)} (${sizeOf(t.shape)} elements) but ${t.data.length} elements of data`, [...path, 'data'])
  }
}

/** Contrastive losses need a negative: b >= 2. */
export function checkBatch (b: number, path: RequestPath): void {
  if (b < 2) {
    throw new LossServerError('invalid_config', `${formatPath(path)}: batch size b = ${b}; contrastive losses need b >= 2 (the other samples are the negatives)`, [...path, 'shape'])
  }
}

export function sameShape (a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

export { fmt as formatShape }
