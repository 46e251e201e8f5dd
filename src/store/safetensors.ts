// Task state as safetensors (../shared/spec/API.md: GET/PUT /v1/tasks/{id}/state), written
// from the format's documentation (https://github.com/huggingface/safetensors, "Format"):
//   8 bytes   N, unsigned 64-bit little-endian: the size of the header
//   N bytes   UTF-8 JSON starting with '{': {name: {"dtype", "shape", "data_offsets": [begin, end]},
//             "__metadata__"?: {string: string}}, padded with spaces (the Python package pads
//             8 + N to a multiple of 8)
//   rest      the byte buffer: each tensor row-major, little-endian, at [begin, end) relative
//             to the buffer's start; together the tensors cover it exactly, without overlap.
// The reader checks what the reference implementation (safetensors/src/tensor.rs) checks —
// header size limit, '{' start, valid UTF-8 JSON, dtype, shape x itemsize == span,
// contiguous offsets covering the whole buffer — and also rejects duplicate JSON keys (which
// JSON.parse would silently collapse) and a `__proto__` name. Only float dtypes are
// supported (F32 as is, F16/BF16/F64 converted to float32); other dtypes of the format are
// named as unsupported.
import { LossServerError, type RequestPath } from '../errors.ts'
import { bfloat16ToFloat32Bulk, float16ToFloat32Bulk, float32ToBfloat16Bulk, float32ToFloat16Bulk } from '../wire/half.ts'

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64'
export const ITEMSIZE: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({ F64: 8, F32: 4, BF16: 2, F16: 2 })
/** The format's other dtypes (safetensors `Dtype`): valid files, but not float tensors we compute with. */
const UNSUPPORTED = new Set(['BOOL', 'F4', 'F6_E2M3', 'F6_E3M2', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'I16', 'U16', 'I32', 'U32', 'C64', 'I64', 'U64'])
// The writer lays tensors out as the Python package does (tensor.rs `prepare`): by dtype
// descending in the Dtype enum's order (F16 < BF16 < F32 < F64), then by name. Larger items
// first keeps every tensor aligned to its itemsize, since the buffer starts 8-aligned.
const DTYPE_RANK: Readonly<Record<SafetensorsDtype, number>> = { F16: 0, BF16: 1, F32: 2, F64: 3 }
const METADATA_KEY = '__metadata__'
/** safetensors' own MAX_HEADER_SIZE (100 MB); callers pass a smaller limit. */
export const DEFAULT_MAX_HEADER_BYTES = 100_000_000

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1

export interface TensorToWrite {
  dtype: SafetensorsDtype
  shape: readonly number[]
  /** float32 values (converted to `dtype`), or the raw little-endian bytes of `dtype` */
  data: Float32Array | Uint8Array
}

export interface ReadTensor {
  /** the dtype in the file */
  dtype: SafetensorsDtype
  shape: number[]
  /** float32 values; a view into the input for aligned F32 on little-endian hosts */
  data: Float32Array
}

export interface ReadOptions {
  /** largest header accepted (default DEFAULT_MAX_HEADER_BYTES) */
  maxHeaderBytes?: number
  /** prefix of error paths (default ['state']) */
  path?: RequestPath
}

export interface ReadResult {
  /** by name, a prototype-less object */
  tensors: Record<string, ReadTensor>
  metadata: Record<string, string>
}

function utf8Compare (a: string, b: string): number {
  // Rust orders Strings by their UTF-8 bytes; JS `<` compares UTF-16 units
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

function elementCount (shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

/** Swaps each item's bytes in place (big-endian hosts only). */
function swapBytes (bytes: Uint8Array, itemsize: number): void {
  for (let i = 0; i < bytes.length; i += itemsize) bytes.subarray(i, i + itemsize).reverse()
}

/** The little-endian bytes of `t.data` as `t.dtype`. */
function encodeData (name: string, t: TensorToWrite, n: number): Uint8Array {
  const size = ITEMSIZE[t.dtype]
  if (t.data instanceof Uint8Array) {
    if (t.data.length !== n * size) throw writeError(name, `${t.data.length} raw bytes, but shape [${t.shape.join(', ')}] of ${t.dtype} needs ${n * size}`)
    return t.data
  }
  if (!(t.data instanceof Float32Array) || t.data.length !== n) {
    throw writeError(name, `shape [${t.shape.join(', ')}] needs ${n} float32 values, got ${t.data instanceof Float32Array ? t.data.length : typeof t.data}`)
  }
  const src = t.data
  let out: Uint8Array
  if (t.dtype === 'F32') {
    // bytes, not values: NaN payloads survive
    out = new Uint8Array(src.buffer, src.byteOffset, src.byteLength)
    if (LITTLE_ENDIAN) return out
    out = out.slice()
  } else if (t.dtype === 'F64') {
    out = new Uint8Array(Float64Array.from(src).buffer)
  } else {
    const bits = new Uint32Array(src.buffer, src.byteOffset, src.length)
    const half = new Uint16Array(n)
    if (t.dtype === 'F16') float32ToFloat16Bulk(bits, half)
    else float32ToBfloat16Bulk(bits, half)
    out = new Uint8Array(half.buffer)
  }
  if (!LITTLE_ENDIAN) swapBytes(out, size)
  return out
}

function writeError (name: string, message: string): LossServerError {
  // the writer serialises server-held state: a bad tensor here is our bug, not the client's
  return new LossServerError('internal', `safetensors: tensor '${name}': ${message}`, [name])
}

/** Serialises tensors (and string metadata) as the Python package does, byte for byte. */
export function writeSafetensors (tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Buffer {
  const entries = Object.keys(tensors).map(name => {
    const t = tensors[name]
    if (name === METADATA_KEY || name === '__proto__') throw writeError(name, 'reserved name')
    if (!Object.hasOwn(ITEMSIZE, t.dtype)) throw writeError(name, `unsupported dtype ${JSON.stringify(t.dtype)}; expected F32, F16, BF16 or F64`)
    if (!Array.isArray(t.shape) || !t.shape.every(d => Number.isSafeInteger(d) && d >= 0)) throw writeError(name, `invalid shape ${JSON.stringify(t.shape)}`)
    const n = elementCount(t.shape)
    return { name, dtype: t.dtype, shape: t.shape, bytes: encodeData(name, t, n) }
  })
  entries.sort((a, b) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || utf8Compare(a.name, b.name))

  const parts: string[] = []
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort(utf8Compare)
    for (const k of keys) if (typeof metadata[k] !== 'string') throw new LossServerError('internal', `safetensors: metadata '${k}' must be a string, got ${typeof metadata[k]}`, [METADATA_KEY, k])
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${keys.map(k => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`)
  }
  let offset = 0
  for (const e of entries) {
    const end = offset + e.bytes.length
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(',')}],"data_offsets":[${offset},${end}]}`)
    offset = end
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8')
  const headerLength = Math.ceil(json.length / 8) * 8
  // Buffer.alloc never hands out a slice of the shared pool: byteOffset 0, zero-filled
  const out = Buffer.alloc(8 + headerLength + offset)
  out.writeBigUInt64LE(BigInt(headerLength), 0)
  json.copy(out, 8)
  out.fill(0x20, 8 + json.length, 8 + headerLength)
  let at = 8 + headerLength
  for (const e of entries) {
    out.set(e.bytes, at)
    at += e.bytes.length
  }
  return out
}

/**
 * The first duplicated key in already-valid JSON, and the top-level key it is under.
 * A scan of strings and brackets: each object gets a set of the keys seen in it.
 */
function duplicateKey (text: string): { key: string, top?: string } | undefined {
  const stack: Array<Set<string> | null> = []
  let top: string | undefined
  let i = 0
  while (i < text.length) {
    const c = text.charCodeAt(i)
    if (c === 0x22) { // '"'
      let j = i + 1
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1
      const str = JSON.parse(text.slice(i, j + 1)) as string
      i = j + 1
      let k = i
      while (k < text.length && (text[k] === ' ' || text[k] === '\t' || text[k] === '\n' || text[k] === '\r')) k++
      const keys = stack[stack.length - 1]
      if (text[k] === ':' && keys) {
        if (keys.has(str)) return { key: str, ...(stack.length > 1 && top !== undefined ? { top } : {}) }
        keys.add(str)
        if (stack.length === 1) top = str
      }
      continue
    }
    if (c === 0x7b) stack.push(new Set()) // '{'
    else if (c === 0x5b) stack.push(null) // '['
    else if (c === 0x7d || c === 0x5d) stack.pop()
    i++
  }
  return undefined
}

function isPlainObject (x: unknown): x is Record<string, unknown> {
  return x !== null && typeof x === 'object' && !Array.isArray(x)
}

function isSize (x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
}

/** Parses and validates a safetensors file; LossServerError('invalid_body') naming the problem. */
export function readSafetensors (buf: Uint8Array, opts: ReadOptions = {}): ReadResult {
  const base = opts.path ?? ['state']
  const maxHeader = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES
  const fail = (message: string, key?: string): LossServerError =>
    new LossServerError('invalid_body', `safetensors: ${key !== undefined ? `'${key}': ` : ''}${message}`, key !== undefined ? [...base, key] : [...base])

  if (buf.length < 8) throw fail(`truncated header: the file has ${buf.length} bytes, fewer than the 8-byte header length`)
  const n64 = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true)
  if (n64 > BigInt(maxHeader)) throw fail(`header length ${n64} exceeds the limit of ${maxHeader} bytes`)
  const n = Number(n64)
  if (8 + n > buf.length) throw fail(`header length ${n} is beyond the file (${buf.length} bytes, so at most ${buf.length - 8})`)
  if (n === 0 || buf[8] !== 0x7b) throw fail(`the header must be a JSON object starting with '{', got ${n === 0 ? 'an empty header' : `byte 0x${buf[8].toString(16).padStart(2, '0')}`}`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, 8 + n))
  } catch {
    throw fail('the header is not valid UTF-8')
  }
  let header: unknown
  try {
    header = JSON.parse(text)
  } catch (e) {
    throw fail(`the header is not valid JSON (${(e as Error).message})`)
  }
  if (!isPlainObject(header)) throw fail('the header must be a JSON object')
  const dup = duplicateKey(text)
  if (dup) throw fail(dup.top !== undefined ? `duplicate key '${dup.key}' in the header entry` : 'duplicate key in the header', dup.top ?? dup.key)

  const dataStart = 8 + n
  const dataLength = buf.length - dataStart
  const metadata = Object.create(null) as Record<string, string>
  const layout: Array<{ name: string, dtype: SafetensorsDtype, shape: number[], begin: number, end: number }> = []
  for (const name of Object.keys(header)) {
    const entry = header[name]
    if (name === '__proto__') throw fail('the name __proto__ is not allowed', name)
    if (name === METADATA_KEY) {
      if (!isPlainObject(entry)) throw fail('__metadata__ must be an object of strings', name)
      for (const k of Object.keys(entry)) {
        if (k === '__proto__') throw fail('the metadata key __proto__ is not allowed', name)
        if (typeof entry[k] !== 'string') throw fail(`metadata '${k}' must be a string, got ${JSON.stringify(entry[k])}`, name)
        metadata[k] = entry[k] as string
      }
      continue
    }
    if (!isPlainObject(entry)) throw fail(`expected {dtype, shape, data_offsets}, got ${JSON.stringify(entry)}`, name)
    const extra = Object.keys(entry).filter(k => k !== 'dtype' && k !== 'shape' && k !== 'data_offsets')
    if (extra.length) throw fail(`unexpected field ${extra.map(k => JSON.stringify(k)).join(', ')}; expected dtype, shape, data_offsets`, name)
    const { dtype, shape, data_offsets: offsets } = entry
    if (typeof dtype !== 'string' || !Object.hasOwn(ITEMSIZE, dtype)) {
      throw fail(typeof dtype === 'string' && UNSUPPORTED.has(dtype)
        ? `dtype ${dtype} is not supported; expected F32, F16, BF16 or F64`
        : `unknown dtype ${JSON.stringify(dtype)}; expected F32, F16, BF16 or F64`, name)
    }
    if (!Array.isArray(shape) || !shape.every(isSize)) throw fail(`shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`, name)
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSize) || offsets[0] > offsets[1]) {
      throw fail(`data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`, name)
    }
    const [begin, end] = offsets as [number, number]
    if (end > dataLength) throw fail(`data_offsets [${begin}, ${end}] out of bounds of the ${dataLength}-byte data buffer`, name)
    const count = elementCount(shape)
    const needed = count * ITEMSIZE[dtype as SafetensorsDtype]
    if (needed !== end - begin) throw fail(`size mismatch: shape [${shape.join(', ')}] of ${dtype} needs ${needed} bytes, data_offsets [${begin}, ${end}] span ${end - begin}`, name)
    layout.push({ name, dtype: dtype as SafetensorsDtype, shape: [...shape], begin, end })
  }
  // contiguous cover of the buffer, as tensor.rs `validate` requires
  const sorted = [...layout].sort((a, b) => a.begin - b.begin || a.end - b.end)
  let at = 0
  let prev: string | undefined
  for (const t of sorted) {
    if (t.begin < at) throw fail(`data_offsets [${t.begin}, ${t.end}] overlap '${prev}' (which ends at ${at})`, t.name)
    if (t.begin > at) throw fail(`gap: data_offsets start at ${t.begin}, but ${prev !== undefined ? `the previous tensor '${prev}' ends` : 'the data buffer starts'} at ${at}`, t.name)
    at = t.end
    prev = t.name
  }
  if (at !== dataLength) throw fail(`${dataLength - at} trailing bytes after the last tensor's data (the buffer has ${dataLength} bytes, the tensors cover ${at})`)

  const tensors = Object.create(null) as Record<string, ReadTensor>
  for (const t of layout) tensors[t.name] = { dtype: t.dtype, shape: t.shape, data: decodeData(buf, dataStart + t.begin, t.end - t.begin, t.dtype) }
  return { tensors, metadata }
}

/** Float32 values of `length` bytes of `dtype` at `offset` in `buf`. */
function decodeData (buf: Uint8Array, offset: number, length: number, dtype: SafetensorsDtype): Float32Array {
  const size = ITEMSIZE[dtype]
  const n = length / size
  const abs = buf.byteOffset + offset
  if (dtype === 'F32' && LITTLE_ENDIAN && abs % 4 === 0) return new Float32Array(buf.buffer, abs, n)
  // an aligned, host-order copy of the bytes
  const bytes = new Uint8Array(length)
  bytes.set(buf.subarray(offset, offset + length))
  if (!LITTLE_ENDIAN) swapBytes(bytes, size)
  if (dtype === 'F32') return new Float32Array(bytes.buffer, 0, n)
  if (dtype === 'F64') return Float32Array.from(new Float64Array(bytes.buffer, 0, n))
  const out = new Float32Array(n)
  const bits = new Uint32Array(out.buffer)
  if (dtype === 'F16') float16ToFloat32Bulk(new Uint16Array(bytes.buffer, 0, n), bits)
  else bfloat16ToFloat32Bulk(new Uint16Array(bytes.buffer, 0, n), bits)
  return out
}
