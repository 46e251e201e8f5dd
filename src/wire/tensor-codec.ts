// Wire tensor <-> HostTensor (../shared/spec/API.md "Tensors"; the format is written down in
// docs/wire-format.md). Every size is checked before anything is allocated, so a tensor that
// claims 10^12 elements costs nothing. A float32 `bin` at a 4-byte-aligned offset becomes a
// Float32Array VIEW over the body's memory (no copy); every other case is one conversion.
import { LossServerError, formatPath, type RequestPath } from '../errors.ts'
import type { HostTensor, WireDtype } from '../tensor.ts'
import { DTYPES, DTYPE_NAMES, isWireDtype } from './dtypes.ts'
import {
  bfloat16ToFloat32Bulk, float16ToFloat32Bulk, float32ToBfloat16Bulk, float32ToFloat16Bulk,
  roundToBfloat16, roundToFloat16
} from './half.ts'

// The wire is little-endian and typed arrays use the host's byte order: refuse to run on a
// big-endian host rather than silently byte-swap every tensor.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('ssl-loss-server needs a little-endian host (the tensor wire format is little-endian)')

export const MAX_RANK = 8

export type WireForm = 'msgpack' | 'json'
export interface TensorLimits { maxElements: number }
export interface DecodedTensor { dtype: WireDtype, tensor: HostTensor }
/** A tensor as it goes on the wire: `data` is bytes (msgpack) or numbers (JSON). */
export interface WireTensor { dtype: WireDtype, shape: number[], data: Uint8Array | number[] }

function invalid (message: string, path: RequestPath): LossServerError {
  return new LossServerError('invalid_tensor', `${formatPath(path) || 'tensor'}: ${message}`, path)
}

function show (v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v)
  if (Array.isArray(v)) return 'an array'
  if (v instanceof Uint8Array) return `${v.byteLength} bytes`
  return `a ${typeof v}`
}

/** Decodes one wire tensor (a decoded msgpack map or a parsed JSON object) to float32. */
export function decodeTensor (value: unknown, path: RequestPath, limits: TensorLimits): DecodedTensor {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw invalid(`expected a tensor {dtype, shape, data}, got ${show(value)}`, path)
  }
  const v = value as Record<string, unknown>
  for (const field of ['dtype', 'shape', 'data']) {
    if (!Object.hasOwn(v, field) || v[field] === undefined) throw invalid(`tensor is missing '${field}' (a tensor is {dtype, shape, data})`, [...path, field])
  }
  const { dtype, shape, data } = v
  if (!isWireDtype(dtype)) throw invalid(`unknown dtype ${show(dtype)}; expected one of ${DTYPE_NAMES.join(', ')}`, [...path, 'dtype'])
  if (!Array.isArray(shape)) throw invalid(`shape must be an array of non-negative integers, got ${show(shape)}`, [...path, 'shape'])
  if (shape.length > MAX_RANK) throw invalid(`rank ${shape.length} is over the maximum of ${MAX_RANK}`, [...path, 'shape'])
  let zero = false
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw invalid(`shape[${i}] must be a non-negative integer, got ${show(d)}`, [...path, 'shape', i])
    if (d === 0) zero = true
  }
  // prod(shape) in floating point cannot overflow (8 dims < 2^53 each stay below 2^424); it
  // is exact wherever it can equal the data's length, which is all the checks below need
  let n = 1
  if (!zero) for (const d of shape as number[]) n *= d
  else n = 0
  const dims = (shape as number[]).slice()
  // A shape that disagrees with its data is malformed (400 invalid_tensor) whatever it claims;
  // only a tensor that really carries more elements than the limit is too large (413). Both
  // are decided from lengths alone, before anything is allocated.
  if (data instanceof Uint8Array) {
    const size = DTYPES[dtype].itemsize
    if (data.byteLength !== n * size) throw invalid(`data has ${data.byteLength} bytes; shape [${shape.join(', ')}] of ${dtype} needs ${n * size} (${n} × ${size})`, [...path, 'data'])
  } else if (Array.isArray(data)) {
    if (data.length !== n) throw invalid(`data has ${data.length} numbers; shape [${shape.join(', ')}] needs ${n}`, [...path, 'data'])
  } else {
    throw invalid(`data must be bytes (msgpack bin) or an array of numbers (JSON), got ${show(data)}`, [...path, 'data'])
  }
  if (n > limits.maxElements) {
    throw new LossServerError('too_large', `${formatPath(path) || 'tensor'}: shape [${shape.join(', ')}] has ${n} elements, over the limit of ${limits.maxElements} per tensor`, [...path, 'shape'])
  }
  if (data instanceof Uint8Array) return { dtype, tensor: { shape: dims, data: fromBytes(data, dtype, n, dims, path) } }
  return { dtype, tensor: { shape: dims, data: fromNumbers(data, dtype, n, dims, path) } }
}

function fromBytes (data: Uint8Array, dtype: WireDtype, n: number, shape: number[], path: RequestPath): Float32Array {
  const { buffer, byteOffset } = data
  if (dtype === 'float32') {
    if (byteOffset % 4 === 0) return new Float32Array(buffer, byteOffset, n) // zero copy
    const out = new Float32Array(n)
    new Uint8Array(out.buffer).set(data)
    return out
  }
  const out = new Float32Array(n)
  if (dtype === 'float64') {
    const f64 = byteOffset % 8 === 0 ? new Float64Array(buffer, byteOffset, n) : new Float64Array(copyBytes(data))
    for (let i = 0; i < n; i++) out[i] = f64[i]
    return out
  }
  const u16 = byteOffset % 2 === 0 ? new Uint16Array(buffer, byteOffset, n) : new Uint16Array(copyBytes(data))
  const bits = new Uint32Array(out.buffer)
  if (dtype === 'float16') float16ToFloat32Bulk(u16, bits)
  else bfloat16ToFloat32Bulk(u16, bits)
  return out
}

// an aligned copy; not data.slice(), which on a Node Buffer is a view, not a copy
function copyBytes (data: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(data.byteLength)
  new Uint8Array(out).set(data)
  return out
}

function fromNumbers (data: unknown[], dtype: WireDtype, n: number, shape: number[], path: RequestPath): Float32Array {
  for (let i = 0; i < n; i++) {
    if (typeof data[i] !== 'number') throw invalid(`data[${i}] must be a number, got ${show(data[i])} (JSON has no NaN or Infinity)`, [...path, 'data', i])
  }
  const out = Float32Array.from(data as number[])
  // a float16/bfloat16 tensor holds only values of that dtype: round as the bytes would
  if (dtype === 'float16') for (let i = 0; i < n; i++) out[i] = roundToFloat16(out[i])
  else if (dtype === 'bfloat16') for (let i = 0; i < n; i++) out[i] = roundToBfloat16(out[i])
  return out
}

/**
 * A HostTensor as it goes on the wire. msgpack float32: `data` is a Uint8Array VIEW over
 * t.data's bytes (no copy; keep t alive until it is sent). Other dtypes: converted bytes.
 * JSON: numbers, rounded to the dtype exactly as the bytes would be, so both forms agree.
 */
export function encodeTensor (t: HostTensor, dtype: WireDtype, form: WireForm): WireTensor {
  const shape = t.shape.slice()
  const src = t.data
  const n = src.length
  if (form === 'json') {
    const out = new Array<number>(n)
    const round = dtype === 'float16' ? roundToFloat16 : dtype === 'bfloat16' ? roundToBfloat16 : undefined
    if (round) for (let i = 0; i < n; i++) out[i] = round(src[i])
    else for (let i = 0; i < n; i++) out[i] = src[i]
    return { dtype, shape, data: out }
  }
  if (dtype === 'float32') return { dtype, shape, data: new Uint8Array(src.buffer, src.byteOffset, src.byteLength) }
  if (dtype === 'float64') {
    const f64 = Float64Array.from(src)
    return { dtype, shape, data: new Uint8Array(f64.buffer) }
  }
  // Float32Array views are always 4-byte aligned, so the Uint32Array view is valid
  const bits = new Uint32Array(src.buffer, src.byteOffset, n)
  const u16 = new Uint16Array(n)
  if (dtype === 'float16') float32ToFloat16Bulk(bits, u16)
  else float32ToBfloat16Bulk(bits, u16)
  return { dtype, shape, data: new Uint8Array(u16.buffer) }
}

// ---- structures of tensors: `inputs`, `params`, `grads` -------------------------------

/** A tensor or a list of tensors per name (API.md: inputs, grads; params has no lists). */
export type TensorTree = Record<string, HostTensor | HostTensor[]>
/** The wire dtype of each tensor of a TensorTree, same structure. */
export type DtypeTree = Record<string, WireDtype | WireDtype[]>

/**
 * Decodes `{ name: tensor | [tensor, ...] }` at `path` (e.g. ['inputs']). Which names a kind
 * takes, and whether each is a list, is the kind's business (compute/evaluate.ts prepare);
 * this checks only that the structure holds tensors. `lists: false` for params.
 */
export function decodeTensorTree (value: unknown, path: RequestPath, limits: TensorLimits, opts: { lists?: boolean } = {}): { tensors: TensorTree, dtypes: DtypeTree } {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw new LossServerError('invalid_body', `${formatPath(path)} must be a map of name to tensor, got ${show(value)}`, path)
  }
  const tensors: TensorTree = {}
  const dtypes: DtypeTree = {}
  for (const [name, v] of Object.entries(value)) {
    if (Array.isArray(v)) {
      if (opts.lists === false) throw new LossServerError('invalid_body', `${formatPath([...path, name])} must be one tensor, not a list`, [...path, name])
      const ts: HostTensor[] = []
      const ds: WireDtype[] = []
      v.forEach((item, i) => { const d = decodeTensor(item, [...path, name, i], limits); ts.push(d.tensor); ds.push(d.dtype) })
      tensors[name] = ts
      dtypes[name] = ds
    } else {
      const d = decodeTensor(v, [...path, name], limits)
      tensors[name] = d.tensor
      dtypes[name] = d.dtype
    }
  }
  return { tensors, dtypes }
}

/**
 * Encodes a TensorTree for a response. `dtype`: one dtype for everything (options.grad_dtype)
 * or a DtypeTree (grads go back in the dtype of the input they belong to); a name or index
 * missing from the DtypeTree goes out as float32.
 */
export function encodeTensorTree (tree: TensorTree, dtype: WireDtype | DtypeTree, form: WireForm): Record<string, WireTensor | WireTensor[]> {
  const out: Record<string, WireTensor | WireTensor[]> = {}
  for (const [name, v] of Object.entries(tree)) {
    const d = typeof dtype === 'string' ? dtype : dtype[name]
    if (Array.isArray(v)) out[name] = v.map((t, i) => encodeTensor(t, (typeof d === 'string' ? d : d?.[i]) ?? 'float32', form))
    else out[name] = encodeTensor(v, (typeof d === 'string' ? d : undefined) ?? 'float32', form)
  }
  return out
}
