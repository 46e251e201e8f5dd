// THE msgpack setup, shared by HTTP bodies and WebSocket frames (../shared/spec/API.md
// "Content types"). msgpackr does the decoding, but only after an iterative scan of the
// bytes has checked the whole value: lengths within the buffer, nesting depth, string map
// keys, no extension types, 64-bit integers within 2^53, nothing after the value. So a bad
// body is one invalid_body error, never a RangeError, a stack overflow, a Set, a RegExp or a
// BigInt. `bin` decodes as a Buffer VIEW into the body (no copy), which tensor-codec.ts
// turns into a Float32Array view when the offset allows.
// `__proto__` keys: msgpackr writes them as `__proto_`, so they never reach a prototype;
// `constructor` and the rest are plain own properties.
import { Packr, Unpackr } from 'msgpackr'
import { LossServerError } from '../errors.ts'

/** Deepest nesting of arrays/maps accepted; requests need about 6. */
export const MAX_DEPTH = 64

const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  structuredClone: false,
  moreTypes: false,
  int64AsType: 'number', // the scan admits only 64-bit integers that are safe, so this is exact
  copyBuffers: false
})

const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false, // typed arrays go out as plain `bin`, not msgpackr's typed-array extension
  skipValues: [undefined], // like JSON.stringify: an undefined field is left out
  encodeUndefinedAsNil: true // ... and an undefined array element is nil (JSON: null)
} as ConstructorParameters<typeof Packr>[0] & { skipValues: unknown[] })

function malformed (detail: string): LossServerError {
  return new LossServerError('invalid_body', `malformed msgpack: ${detail}`)
}

/**
 * Decodes one msgpack value that must fill `buf` exactly. Maps become plain objects with
 * string keys, `bin` becomes a Buffer/Uint8Array view into `buf` (keep `buf` alive and
 * unmodified while the result is used). Throws LossServerError('invalid_body') otherwise.
 */
export function decode (buf: Uint8Array, opts: { maxDepth?: number } = {}): unknown {
  if (!(buf instanceof Uint8Array)) throw malformed('body is not bytes')
  scan(buf, opts.maxDepth ?? MAX_DEPTH)
  try {
    return unpackr.unpack(buf)
  } catch (err) {
    // unreachable after scan() unless msgpackr disagrees with it; still never a raw error
    throw malformed(err instanceof Error ? err.message : String(err))
  }
}

/** Encodes a response or frame: plain objects, arrays, strings, numbers, booleans, null, Uint8Array views. */
export function encode (value: unknown): Buffer {
  const bound = sizeBound(value, 0)
  if (bound < LARGE) return packr.pack(value) as Buffer
  // Large (tensor) values: the parts below copied once into a buffer of exactly the right
  // size (no regrowth copies, and no big buffer kept as msgpackr's scratch, which would pin
  // it under every later small response); its bins start 4-byte aligned like the parts'.
  const { parts, byteLength } = encodeParts(value)
  const out = Buffer.allocUnsafeSlow(byteLength)
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.byteLength }
  return out
}

const LARGE = 1 << 20

/** An upper bound of the encoded size (bin and str payloads plus 9 bytes per token). */
function sizeBound (v: unknown, depth: number): number {
  if (depth > MAX_DEPTH * 4) throw new Error('msgpack encode: value nested too deeply (a cycle?)')
  if (v === null || typeof v !== 'object') return typeof v === 'string' ? 5 + 3 * v.length : 9
  if (ArrayBuffer.isView(v)) return 5 + v.byteLength
  let n = 5
  if (Array.isArray(v)) {
    for (const x of v) n += sizeBound(x, depth + 1)
  } else {
    for (const k in v) n += 5 + 3 * k.length + sizeBound((v as Record<string, unknown>)[k], depth + 1)
  }
  return n
}

/** Bins of at least this many bytes go out as views of the caller's memory, 4-byte aligned. */
export const VIEW_BYTES = 1 << 12

/**
 * Bodies below this size are better joined into one buffer than written as parts: copying
 * 64 KB costs microseconds, while each part costs a write call (HTTP) or a frame (WebSocket),
 * which is what small-request latency is made of.
 */
export const JOIN_BELOW_BYTES = 1 << 20

/**
 * A body ready to write (an HTTP answer or request, a WebSocket message): a small one
 * (JOIN_BELOW_BYTES) joined into ONE part, one write or one frame; a large one as the parts
 * of encodeParts, its tensors views of the value's memory, never copied into one buffer.
 */
export function encodeForWrite (value: unknown): EncodedParts {
  const encoded = encodeParts(value)
  if (encoded.parts.length > 1 && encoded.byteLength < JOIN_BELOW_BYTES) return { parts: [Buffer.concat(encoded.parts, encoded.byteLength)], byteLength: encoded.byteLength }
  return encoded
}

/** A Buffer over the same memory (no copy). */
export function asBuffer (b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

export interface EncodedParts {
  /** the body, in order: small msgpack pieces and VIEWS of the value's large bins (not copies) */
  parts: Uint8Array[]
  byteLength: number
}

/**
 * Encodes `value` as a list of byte chunks whose concatenation is one msgpack value: the
 * structure and small values (through msgpackr, so scalars encode exactly as encode() does)
 * in small buffers, and each bin of VIEW_BYTES or more as a view of the caller's own memory,
 * so a 154 MB answer is written to the socket without being copied into one buffer (keep
 * the value's memory alive and unmodified until the parts are sent).
 *
 * Alignment: a map whose last entry is a large bin (a tensor's `data`, put last) has that
 * bin's payload start at a multiple of 4 bytes from the start of the body, so a receiver
 * that holds the body at an aligned address (a fresh buffer) views float32 data in place.
 * It needs no new field: the map header and that entry's key are written in a wider msgpack
 * format when the minimal one would misalign (fixmap -> map 16 adds 2 bytes, fixstr -> str 8
 * -> str 16 add 1 and 2). Every msgpack reader accepts these (the spec's "should use the
 * smallest format" is a recommendation to writers; readers must accept all formats).
 */
export function encodeParts (value: unknown): EncodedParts {
  const w = new PartWriter()
  writeValue(w, value, 0)
  return w.finish()
}

class PartWriter {
  readonly parts: Uint8Array[] = []
  private small: Uint8Array[] = []
  private smallBytes = 0
  /** bytes written so far (the offset of the next byte in the body) */
  pos = 0

  bytes (b: Uint8Array): void {
    if (b.byteLength === 0) return
    this.small.push(b)
    this.smallBytes += b.byteLength
    this.pos += b.byteLength
  }

  view (b: Uint8Array): void {
    this.flush()
    this.parts.push(b)
    this.pos += b.byteLength
  }

  private flush (): void {
    if (this.small.length === 0) return
    // the small pieces are copies already (msgpackr's output, our headers): join them once
    this.parts.push(this.small.length === 1 ? this.small[0] : Buffer.concat(this.small, this.smallBytes))
    this.small = []
    this.smallBytes = 0
  }

  finish (): EncodedParts {
    this.flush()
    return { parts: this.parts, byteLength: this.pos }
  }
}

function asBytes (v: unknown): Uint8Array | undefined {
  if (!ArrayBuffer.isView(v) || v instanceof DataView) return undefined
  return v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
}

/** True when `v` holds a bin of VIEW_BYTES or more somewhere. */
function hasLargeBin (v: unknown, depth: number): boolean {
  if (depth > MAX_DEPTH * 4) throw new Error('msgpack encode: value nested too deeply (a cycle?)')
  if (v === null || typeof v !== 'object') return false
  if (ArrayBuffer.isView(v)) return v.byteLength >= VIEW_BYTES
  if (Array.isArray(v)) return v.some(x => hasLargeBin(x, depth + 1))
  for (const k in v) if (hasLargeBin((v as Record<string, unknown>)[k], depth + 1)) return true
  return false
}

function header (...bytes: number[]): Uint8Array { return Uint8Array.from(bytes) }

function sizedHeader (fix: number, fixMax: number, c16: number, c32: number, n: number, width: 1 | 3 | 5): Uint8Array {
  if (width === 1 && n <= fixMax) return header(fix | n)
  if (width <= 3 && n <= 0xffff) return header(c16, n >>> 8, n & 0xff)
  return header(c32, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
}

/** A string in a given format: 0 fixstr, 1 str 8, 2 str 16, 3 str 32 (the smallest that fits if too small). */
function strBytes (s: string, format: number): Uint8Array {
  const utf8 = Buffer.from(s, 'utf8')
  const n = utf8.byteLength
  if (format <= 0 && n <= 31) return Buffer.concat([header(0xa0 | n), utf8])
  if (format <= 1 && n <= 0xff) return Buffer.concat([header(0xd9, n), utf8])
  if (format <= 2 && n <= 0xffff) return Buffer.concat([header(0xda, n >>> 8, n & 0xff), utf8])
  return Buffer.concat([header(0xdb, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff), utf8])
}

function binHeader (n: number): Uint8Array {
  if (n <= 0xff) return header(0xc4, n)
  if (n <= 0xffff) return header(0xc5, n >>> 8, n & 0xff)
  return header(0xc6, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
}

function writeValue (w: PartWriter, v: unknown, depth: number): void {
  if (!hasLargeBin(v, depth)) { w.bytes(packr.pack(v) as Buffer); return }
  const bin = asBytes(v)
  if (bin) { w.bytes(binHeader(bin.byteLength)); w.view(bin); return }
  if (Array.isArray(v)) {
    w.bytes(sizedHeader(0x90, 15, 0xdc, 0xdd, v.length, 1))
    for (const x of v) writeValue(w, x, depth + 1)
    return
  }
  // a map: entries without large bins first (encoded now, so their size is known), then
  // those with one, a direct large bin (a tensor's `data`) last so it can be aligned
  const obj = v as Record<string, unknown>
  const smallEntries: Uint8Array[] = []
  const nested: string[] = []
  let direct: string | undefined
  for (const k in obj) {
    const x = obj[k]
    if (x === undefined) continue // like JSON.stringify and encode()'s skipValues
    if (!hasLargeBin(x, depth + 1)) smallEntries.push(packr.pack(k) as Buffer, packr.pack(x) as Buffer)
    else if (direct === undefined && asBytes(x)) direct = k
    else nested.push(k)
  }
  const count = smallEntries.length / 2 + nested.length + (direct === undefined ? 0 : 1)
  if (direct === undefined || nested.length > 0) {
    w.bytes(sizedHeader(0x80, 15, 0xde, 0xdf, count, 1))
    for (const b of smallEntries) w.bytes(b)
    for (const k of nested) { w.bytes(packr.pack(k) as Buffer); writeValue(w, obj[k], depth + 1) }
    if (direct !== undefined) writeDirect(w, direct, asBytes(obj[direct])!, 0)
    return
  }
  let small = 0
  for (const b of smallEntries) small += b.byteLength
  const data = asBytes(obj[direct])!
  const bh = binHeader(data.byteLength).byteLength
  // the narrowest header width / key format whose payload offset is a multiple of 4
  let best: { width: 1 | 3 | 5, format: number, size: number } | undefined
  for (const width of [1, 3, 5] as const) {
    if (width === 1 && count > 15) continue
    for (let format = 0; format <= 3; format++) {
      const key = strBytes(direct, format).byteLength
      const size = width + small + key + bh
      if ((w.pos + size) % 4 === 0 && (best === undefined || size < best.size)) best = { width, format, size }
    }
  }
  w.bytes(sizedHeader(0x80, 15, 0xde, 0xdf, count, best?.width ?? 1))
  for (const b of smallEntries) w.bytes(b)
  writeDirect(w, direct, data, best?.format ?? 0)
}

function writeDirect (w: PartWriter, key: string, data: Uint8Array, keyFormat: number): void {
  w.bytes(strBytes(key, keyFormat))
  w.bytes(binHeader(data.byteLength))
  w.view(data)
}

/**
 * Walks the tokens of one msgpack value without building it, with an explicit stack
 * (msgpack spec: https://github.com/msgpack/msgpack/blob/master/spec.md).
 */
function scan (buf: Uint8Array, maxDepth: number): void {
  const end = buf.length
  if (end === 0) throw malformed('empty body')
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  // items still to read per open container; a map of k entries counts 2k (key, value, ...)
  const remaining = new Float64Array(maxDepth + 1)
  const isMap = new Uint8Array(maxDepth + 1)
  let depth = 0
  remaining[0] = 1
  let pos = 0

  const need = (n: number, what: string, at: number): void => {
    if (n > end - pos) throw malformed(`truncated: ${what} at byte ${at} needs ${n} more bytes, ${end - pos} left`)
  }

  while (true) {
    while (remaining[depth] === 0) {
      if (depth === 0) {
        if (pos !== end) throw malformed(`${end - pos} trailing bytes after the value (it ends at byte ${pos})`)
        return
      }
      depth--
    }
    const isKey = isMap[depth] === 1 && remaining[depth] % 2 === 0
    remaining[depth]--
    if (pos >= end) throw malformed(`truncated: value expected at byte ${pos}`)
    const at = pos
    const t = buf[pos++]

    let strLen = -1
    let binLen = -1
    let count = -1 // container size: array items or map entries
    let map = false
    if (t <= 0x7f || t >= 0xe0) {
      // positive / negative fixint: the whole value is this byte
    } else if (t <= 0x8f) {
      count = t & 0x0f
      map = true
    } else if (t <= 0x9f) {
      count = t & 0x0f
    } else if (t <= 0xbf) {
      strLen = t & 0x1f
    } else {
      switch (t) {
        case 0xc0: case 0xc2: case 0xc3: break
        case 0xc4: need(1, 'bin 8 length', at); binLen = buf[pos]; pos += 1; break
        case 0xc5: need(2, 'bin 16 length', at); binLen = view.getUint16(pos); pos += 2; break
        case 0xc6: need(4, 'bin 32 length', at); binLen = view.getUint32(pos); pos += 4; break
        case 0xca: need(4, 'float 32', at); pos += 4; break
        case 0xcb: need(8, 'float 64', at); pos += 8; break
        case 0xcc: case 0xd0: need(1, 'int 8', at); pos += 1; break
        case 0xcd: case 0xd1: need(2, 'int 16', at); pos += 2; break
        case 0xce: case 0xd2: need(4, 'int 32', at); pos += 4; break
        case 0xcf: case 0xd3: {
          need(8, 'int 64', at)
          const v = (t === 0xcf ? view.getUint32(pos) : view.getInt32(pos)) * 4294967296 + view.getUint32(pos + 4)
          if (!Number.isSafeInteger(v)) throw malformed(`64-bit integer at byte ${at} is beyond ±(2^53 - 1)`)
          pos += 8
          break
        }
        case 0xd9: need(1, 'str 8 length', at); strLen = buf[pos]; pos += 1; break
        case 0xda: need(2, 'str 16 length', at); strLen = view.getUint16(pos); pos += 2; break
        case 0xdb: need(4, 'str 32 length', at); strLen = view.getUint32(pos); pos += 4; break
        case 0xdc: need(2, 'array 16 length', at); count = view.getUint16(pos); pos += 2; break
        case 0xdd: need(4, 'array 32 length', at); count = view.getUint32(pos); pos += 4; break
        case 0xde: need(2, 'map 16 length', at); count = view.getUint16(pos); pos += 2; map = true; break
        case 0xdf: need(4, 'map 32 length', at); count = view.getUint32(pos); pos += 4; map = true; break
        case 0xc1: throw malformed(`byte 0xc1 (never used) at byte ${at}`)
        default: throw malformed(`extension type 0x${t.toString(16)} at byte ${at} is not accepted`)
      }
    }
    if (isKey && strLen < 0) throw malformed(`map key at byte ${at} is not a string`)
    if (strLen >= 0) { need(strLen, 'string', at); pos += strLen }
    if (binLen >= 0) { need(binLen, 'bin', at); pos += binLen }
    if (count >= 0) {
      if (depth + 1 > maxDepth) throw malformed(`nesting deeper than ${maxDepth} at byte ${at}`)
      const items = map ? 2 * count : count
      // every item takes at least one byte: refuse impossible counts before anything is built
      if (items > end - pos) throw malformed(`truncated: ${map ? 'map' : 'array'} at byte ${at} claims ${count} ${map ? 'entries' : 'items'}, only ${end - pos} bytes left`)
      if (items > 0) {
        depth++
        remaining[depth] = items
        isMap[depth] = map ? 1 : 0
      }
    }
  }
}
