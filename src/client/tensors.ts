// Tensors between the caller and the wire, through the server's own codec
// (src/wire/tensor-codec.ts, docs/wire-format.md), so client and server cannot disagree on a
// byte. A float32 HostTensor goes out as a view of its own memory (msgpack encode copies it
// once into the body); answers' float32 gradients are Float32Array views of the answer
// body when their offset is 4-byte aligned, else one copy.
import type { HostTensor, WireDtype } from '../tensor.ts'
import type { RequestPath } from '../errors.ts'
import { LossServerError } from '../errors.ts'
import { decodeTensor, encodeTensor, type WireForm, type WireTensor } from '../wire/tensor-codec.ts'
import { isWireDtype } from '../wire/dtypes.ts'
import { LossClientError } from './errors.ts'

/** What a caller may pass as a tensor: host memory (sent in `dtype`, default float32) or a wire tensor. */
export type TensorLike =
  | { shape: readonly number[], data: Float32Array, dtype?: WireDtype }
  | { dtype: WireDtype, shape: readonly number[], data: Uint8Array | number[] }

/** A tensor of an answer: float32 host memory plus the dtype it travelled in. */
export interface ClientTensor extends HostTensor { dtype: WireDtype }

export type TensorTreeLike = Record<string, TensorLike | TensorLike[]>
export type ClientTensorTree = Record<string, ClientTensor | ClientTensor[]>

const NO_LIMIT = { maxElements: Number.MAX_SAFE_INTEGER }

function bad (message: string, path: RequestPath): LossClientError {
  return new LossClientError(0, 'invalid_tensor', message, { path })
}

/** One tensor in the body's form. `dtype`: the wire dtype of host tensors that name none. */
export function toWire (t: TensorLike, form: WireForm, dtype: WireDtype, path: RequestPath): WireTensor {
  if (t === null || typeof t !== 'object' || !Array.isArray(t.shape)) throw bad(`${path.join('.')}: expected a tensor { shape, data }`, path)
  const { data } = t
  if (data instanceof Float32Array) {
    const d = t.dtype ?? dtype
    if (!isWireDtype(d)) throw bad(`${path.join('.')}: unknown dtype ${String(d)}`, [...path, 'dtype'])
    let n = 1
    for (const s of t.shape) n *= s
    if (n !== data.length) throw bad(`${path.join('.')}: shape [${t.shape.join(', ')}] needs ${n} elements, data has ${data.length}`, [...path, 'shape'])
    return encodeTensor({ shape: t.shape as number[], data }, d, form)
  }
  const wire = t as WireTensor
  const isBytes = data instanceof Uint8Array
  // already in this form: sent as given (the server checks it)
  if ((form === 'msgpack' && isBytes) || (form === 'json' && Array.isArray(data))) return wire
  // the other form: through the codec once
  try {
    const d = decodeTensor(wire, path, NO_LIMIT)
    return encodeTensor(d.tensor, d.dtype, form)
  } catch (err) {
    if (err instanceof LossServerError) throw new LossClientError(0, err.code, err.message, { ...(err.path ? { path: err.path } : {}) })
    throw err
  }
}

export function treeToWire (tree: TensorTreeLike, form: WireForm, dtype: WireDtype, path: RequestPath): Record<string, WireTensor | WireTensor[]> {
  const out: Record<string, WireTensor | WireTensor[]> = {}
  for (const [name, v] of Object.entries(tree)) {
    out[name] = Array.isArray(v) ? v.map((t, i) => toWire(t, form, dtype, [...path, name, i])) : toWire(v, form, dtype, [...path, name])
  }
  return out
}

/** One tensor of an answer (msgpack or JSON form) as float32 host memory. */
export function fromWire (value: unknown, path: RequestPath): ClientTensor {
  try {
    const { dtype, tensor } = decodeTensor(value, path, NO_LIMIT)
    return { dtype, shape: tensor.shape, data: tensor.data }
  } catch (err) {
    if (err instanceof LossServerError) throw new LossClientError(0, 'invalid_answer', `the server's answer has a bad tensor: ${err.message}`, { path })
    throw err
  }
}

export function treeFromWire (tree: unknown, path: RequestPath): ClientTensorTree {
  const out: ClientTensorTree = {}
  if (tree === null || typeof tree !== 'object') throw new LossClientError(0, 'invalid_answer', `the server's answer has no tensor map at ${path.join('.')}`, { path })
  for (const [name, v] of Object.entries(tree)) {
    out[name] = Array.isArray(v) ? v.map((t, i) => fromWire(t, [...path, name, i])) : fromWire(v, [...path, name])
  }
  return out
}
