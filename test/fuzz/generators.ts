// Fuzz inputs for the evaluation routes and the stream, all drawn from one seeded PRNG
// (src/tasks/prng.ts), so a failing case is replayed from (seed, case number) alone.
// A case starts from a small valid request of a random kind and applies one mutation:
// structural (type swaps, bad dims, rank 0 / rank 9, dtype confusion, deep nesting, giant
// strings and arrays, NaN/Inf, __proto__ / constructor keys, wrong kinds, missing and extra
// fields) on the object before encoding, or byte-level (bit flips, truncation, duplicate keys,
// random bytes) after it. Tensors are small so the ones that are valid compute in a moment.
import { Prng } from '../../src/tasks/prng.ts'
import { encode } from '../../src/wire/msgpack.ts'
import { initParams } from '../../src/tasks/cpc-params.ts'
import { f32BitsToBf16, f32BitsToF16 } from '../../src/wire/half.ts'

export type Form = 'msgpack' | 'json' | 'ws'

/** The limits of the server the cases are written for: giant strings, arrays and tensors reach them. */
export const FUZZ_LIMITS = { bodyLimit: 1024 * 1024, wsMaxPayload: 1024 * 1024, maxElements: 4096, maxInstanceBytes: 1024 * 1024, maxInstances: 32 }
export const KINDS = ['nt-xent', 'amdim-nce', 'feature-map-contrastive', 'cpc'] as const
const DTYPES = ['float32', 'float16', 'bfloat16', 'float64'] as const

export interface FuzzCase {
  index: number
  form: Form
  /** the kind in the URL (HTTP) or the frame (ws) */
  kind: string
  mutation: string
  /** the bytes sent: an HTTP body or one WebSocket frame */
  bytes: Buffer
  contentType: string
  /** true when the mutation always makes the request invalid (a 200 would be a bug) */
  mustFail: boolean
}

type Tree = Record<string, unknown>
const pick = <T>(r: Prng, xs: readonly T[]): T => xs[r.int(xs.length)]
const int = (r: Prng, lo: number, hi: number): number => lo + r.int(hi - lo + 1)

/** A tensor in our own intermediate form: values and dtype; encoded per form at the end. */
interface Tensor { __tensor: true, dtype: string, shape: unknown, values: number[], bytes?: Uint8Array }
const tensor = (r: Prng, shape: number[], dtype: string = pick(r, DTYPES)): Tensor => ({
  __tensor: true, dtype, shape, values: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.round(r.uniform(-2, 2) * 64) / 64)
})

function validRequest (r: Prng, kind: string): Tree {
  const b = int(r, 2, 3)
  if (kind === 'nt-xent') {
    const d = int(r, 1, 5)
    return { inputs: { out_1: tensor(r, [b, d]), out_2: tensor(r, [b, d]) }, ...(r.float() < 0.3 ? { config: { temperature: 0.25 } } : {}) }
  }
  if (kind === 'amdim-nce') {
    const d = int(r, 1, 4)
    return { inputs: { anchor: tensor(r, [b, d]), positive: tensor(r, [d, b * int(r, 1, 3)]) }, ...(r.float() < 0.3 ? { config: { tclip: null } } : {}) }
  }
  if (kind === 'feature-map-contrastive') {
    const map = (): number[] => [b, 2, int(r, 1, 3), int(r, 1, 3)]
    const a = [map(), map()]
    return { inputs: { anchor: a.map(s => tensor(r, s)), positive: a.map(s => tensor(r, s)) }, options: { seed: r.nextUint32() } }
  }
  // cpc: the smallest PixelCNN, parameters initialised as the task would
  const config = { num_input_channels: 2, target_dim: 2, hidden_channels: 2, num_blocks: 1 }
  const params = initParams(config, r.nextUint32())
  return {
    config,
    inputs: { z: tensor(r, [b, 2, int(r, 3, 4), 2]) },
    params: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, { __tensor: true, dtype: 'float32', shape: v.shape, values: Array.from(v.data) }])),
    ...(r.float() < 0.3 ? { options: { param_grads: true } } : {})
  }
}

// ---- structural mutations (on the tree) -----------------------------------------------

/** Every [parent, key] in the tree, tensors included as leaves and as maps. */
function slots (tree: unknown, out: Array<[Record<string | number, unknown>, string | number]> = []): Array<[Record<string | number, unknown>, string | number]> {
  if (tree === null || typeof tree !== 'object' || ArrayBuffer.isView(tree)) return out
  for (const key of Object.keys(tree)) {
    if (key === '__tensor') continue
    const k = Array.isArray(tree) ? Number(key) : key
    out.push([tree as Record<string | number, unknown>, k])
    slots((tree as Record<string, unknown>)[key], out)
  }
  return out
}

function tensors (tree: unknown, out: Tensor[] = []): Tensor[] {
  if (tree === null || typeof tree !== 'object') return out
  if ((tree as Tensor).__tensor) { out.push(tree as Tensor); return out }
  for (const v of Object.values(tree)) tensors(v, out)
  return out
}

function oddValue (r: Prng): unknown {
  return pick(r, [
    () => null, () => true, () => 0, () => -1, () => 1.5, () => 2 ** 53 + 2, () => -(2 ** 63), () => NaN, () => Infinity, () => -Infinity,
    () => '', () => 'x'.repeat(int(r, 1, 64)), () => [], () => [1, 'a', null], () => ({}), () => ({ a: { b: {} } }),
    () => new Uint8Array(int(r, 0, 16)), () => 'float32', () => ['float32']
  ])()
}

/**
 * Deep nesting is spliced in as bytes after encoding (a recursive encoder would overflow its
 * own stack first): the tree holds a marker string, replaced by `depth` one-element arrays
 * or one-entry maps around a 0.
 */
const DEEP = 'DEEP-NESTING-MARKER'
interface Deep { depth: number, asArray: boolean }
let deep: Deep | undefined

function nested (depth: number, asArray: boolean): unknown {
  deep = { depth, asArray }
  return DEEP
}

function spliceDeep (bytes: Buffer, form: 'msgpack' | 'json', d: Deep): Buffer {
  const marker = form === 'json' ? Buffer.from(JSON.stringify(DEEP)) : encode(DEEP)
  const at = bytes.indexOf(marker)
  if (at < 0) return bytes
  const n = d.depth
  const nest = form === 'json'
    ? Buffer.from((d.asArray ? '['.repeat(n) : '{"a":'.repeat(n)) + '0' + (d.asArray ? ']' : '}').repeat(n))
    : Buffer.concat([Buffer.alloc(n * (d.asArray ? 1 : 3), 0), Buffer.from([0])]).fill(d.asArray ? Buffer.from([0x91]) : Buffer.from([0x81, 0xa1, 0x61]), 0, n * (d.asArray ? 1 : 3))
  return Buffer.concat([bytes.subarray(0, at), nest, bytes.subarray(at + marker.length)])
}

type Mutation = { name: string, mustFail: boolean, apply: (r: Prng, tree: Tree, c: { kind: string }) => void }

const STRUCTURAL: Mutation[] = [
  { name: 'type-swap', mustFail: false, apply: (r, tree) => { const s = slots(tree); const [p, k] = pick(r, s); p[k] = oddValue(r) } },
  { name: 'delete-field', mustFail: false, apply: (r, tree) => { const [p, k] = pick(r, slots(tree)); if (Array.isArray(p)) p.splice(Number(k), 1); else delete p[k] } },
  { name: 'extra-field', mustFail: false, apply: (r, tree) => { const [p] = pick(r, slots(tree)); if (p && typeof p === 'object' && !Array.isArray(p) && !ArrayBuffer.isView(p)) (p as Tree)[pick(r, ['extra', 'shape', 'data', 'kind', 'id', 'zz'])] = oddValue(r) } },
  {
    name: 'huge-dim', mustFail: true, apply: (r, tree) => {
      const t = pick(r, tensors(tree))
      const shape = [...(t.shape as number[])]
      shape[r.int(shape.length)] = pick(r, [2 ** 31, 2 ** 32 + 1, 2 ** 40, 2 ** 53 - 1, 1e300])
      t.shape = shape
    }
  },
  { name: 'negative-dim', mustFail: true, apply: (r, tree) => { const t = pick(r, tensors(tree)); const s = [...(t.shape as number[])]; s[r.int(s.length)] = -int(r, 1, 4); t.shape = s } },
  { name: 'fractional-dim', mustFail: true, apply: (r, tree) => { const t = pick(r, tensors(tree)); const s = [...(t.shape as number[])]; s[r.int(s.length)] += 0.5; t.shape = s } },
  { name: 'nonnumeric-dim', mustFail: true, apply: (r, tree) => { const t = pick(r, tensors(tree)); const s: unknown[] = [...(t.shape as number[])]; s[r.int(s.length)] = pick(r, ['2', null, NaN, [2], true]); t.shape = s } },
  { name: 'rank-0', mustFail: true, apply: (r, tree) => { const t = pick(r, tensors(tree)); t.shape = []; t.values = [1] } },
  { name: 'rank-9', mustFail: true, apply: (r, tree) => { const t = pick(r, tensors(tree)); t.shape = [1, 1, 1, 1, 1, 1, 1, 1, t.values.length] } },
  { name: 'zero-dim', mustFail: false, apply: (r, tree) => { const t = pick(r, tensors(tree)); const s = [...(t.shape as number[])]; s[r.int(s.length)] = 0; t.shape = s; t.values = [] } },
  { name: 'shape-data-mismatch', mustFail: true, apply: (r, tree) => { const t = pick(r, tensors(tree)); if (r.float() < 0.5) t.values.push(1); else t.values.pop() } },
  { name: 'dtype-confusion', mustFail: true, apply: (r, tree) => { const t = pick(r, tensors(tree)); t.dtype = pick(r, ['int8', 'float', 'FLOAT32', 'float8', 'uint8', 'f4', '<f4', 'float32 ', 'bool']) } },
  {
    name: 'dtype-reinterpret', mustFail: false, apply: (r, tree) => {
      // bytes encoded as one dtype, labelled as another: a length error, or a different valid tensor
      const t = pick(r, tensors(tree))
      t.bytes = encodeBytes(t.dtype, t.values)
      t.dtype = pick(r, DTYPES.filter(d => d !== t.dtype))
    }
  },
  { name: 'non-finite-data', mustFail: true, apply: (r, tree) => { const t = pick(r, tensors(tree)); if (t.values.length) t.values[r.int(t.values.length)] = pick(r, [NaN, Infinity, -Infinity]) } },
  { name: 'non-finite-config', mustFail: false, apply: (r, tree) => { tree.config = { ...(tree.config as Tree ?? {}), [pick(r, ['temperature', 'tclip', 'embed_scale', 'target_dim', 'num_blocks'])]: pick(r, [NaN, Infinity, -Infinity, -1, 0, 1e308, 2 ** 31]) } } },
  { name: 'huge-config', mustFail: false, apply: (r, tree) => { tree.config = { ...(tree.config as Tree ?? {}), [pick(r, ['hidden_channels', 'num_blocks', 'target_dim', 'num_input_channels'])]: pick(r, [2 ** 20, 2 ** 31 - 1, 2 ** 40, 1e9]) } } },
  { name: 'bad-comparisons', mustFail: false, apply: (r, tree) => { tree.config = { ...(tree.config as Tree ?? {}), comparisons: pick(r, ['', '0', '99', '00,', 'ab', '0r', 'rr', '00, 11, 22', ' , ', '-1', '1e3'.repeat(50)]) } } },
  { name: 'bad-options', mustFail: false, apply: (r, tree) => { tree.options = { ...(tree.options as Tree ?? {}), [pick(r, ['seed', 'grad_dtype', 'pairs', 'locations', 'gradients', 'update', 'nope'])]: oddValue(r) } } },
  { name: 'deep-nesting', mustFail: true, apply: (r, tree) => { const [p, k] = pick(r, slots(tree)); p[k] = nested(pick(r, [65, 200, 5000]), r.float() < 0.5) } },
  { name: 'giant-string', mustFail: false, apply: (r, tree) => { const [p, k] = pick(r, slots(tree)); p[k] = 'A'.repeat(pick(r, [10_000, 300_000, 1_100_000])) } },
  {
    // a well-formed tensor of 5000 elements: over the fuzz server's --max-elements 4096 (FUZZ_LIMITS)
    name: 'over-element-limit', mustFail: true, apply: (r, tree) => {
      const t = pick(r, tensors(tree))
      const shape = [...(t.shape as number[])]
      shape[shape.length - 1] = Math.ceil(5000 / (shape.slice(0, -1).reduce((a, b) => a * b, 1) || 1))
      t.shape = shape
      t.values = new Array(shape.reduce((a, b) => a * b, 1)).fill(0.5)
    }
  },
  { name: 'giant-key', mustFail: true, apply: (r, tree) => { (tree.inputs as Tree)['k'.repeat(pick(r, [1000, 100_000]))] = oddValue(r) } },
  { name: 'giant-array', mustFail: false, apply: (r, tree) => { const [p, k] = pick(r, slots(tree)); p[k] = new Array(pick(r, [10_000, 100_000])).fill(pick(r, [0, 1, null])) } },
  { name: 'giant-shape', mustFail: true, apply: (r, tree) => { const t = pick(r, tensors(tree)); t.shape = new Array(pick(r, [100, 50_000])).fill(1) } },
  { name: 'proto-key', mustFail: false, apply: (r, tree) => { const [p] = pick(r, slots(tree)); const target = p && typeof p === 'object' && !Array.isArray(p) ? p : tree; (target as Tree)[pick(r, ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'])] = pick(r, [{ polluted: true }, { prototype: { polluted: true } }, 1, null]) } },
  { name: 'list-for-tensor', mustFail: true, apply: (r, tree) => { const inputs = tree.inputs as Tree; const k = pick(r, Object.keys(inputs)); inputs[k] = Array.isArray(inputs[k]) ? (inputs[k] as unknown[])[0] : [inputs[k], inputs[k]] } },
  { name: 'empty-list', mustFail: true, apply: (r, tree) => { const inputs = tree.inputs as Tree; const k = pick(r, Object.keys(inputs)); inputs[k] = [] } },
  { name: 'shape-swap', mustFail: false, apply: (r, tree) => { const ts = tensors(tree); const t = pick(r, ts); t.shape = [...(t.shape as number[])].reverse() } },
  { name: 'not-a-map', mustFail: true, apply: (r, tree) => { for (const k of Object.keys(tree)) delete tree[k]; (tree as Tree).__replace = oddValue(r) } }
]

// ---- encoding ---------------------------------------------------------------------------

function encodeBytes (dtype: string, values: number[]): Uint8Array {
  if (dtype === 'float64') return new Uint8Array(Float64Array.from(values).buffer)
  const f32 = Float32Array.from(values)
  if (dtype === 'float16' || dtype === 'bfloat16') {
    const bits = new Uint32Array(f32.buffer)
    const to = dtype === 'float16' ? f32BitsToF16 : f32BitsToBf16
    return new Uint8Array(Uint16Array.from(bits, to).buffer)
  }
  return new Uint8Array(f32.buffer)
}

/** Our tree -> the wire object: tensors as {dtype, shape, data} in bytes (msgpack) or numbers (JSON). */
function toWire (v: unknown, form: 'msgpack' | 'json'): unknown {
  if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v)) return v
  if ((v as Tensor).__tensor) {
    const t = v as Tensor
    // a mutation may have swapped or deleted any field of the tensor, `values` included
    const data = !Array.isArray(t.values) ? t.values : form === 'json' ? t.values : (t.bytes ?? encodeBytes(t.dtype, t.values))
    const out: Tree = {}
    for (const k of Object.keys(t)) {
      if (k === 'values') out.data = data
      else if (k !== '__tensor' && k !== 'bytes') out[k] = k === 'dtype' || k === 'shape' ? t[k] : toWire((t as unknown as Tree)[k], form)
    }
    return out
  }
  if (Array.isArray(v)) return v.map(x => toWire(x, form))
  const out: Tree = {}
  for (const [k, x] of Object.entries(v)) {
    if (k === '__proto__') Object.defineProperty(out, k, { value: toWire(x, form), enumerable: true, configurable: true, writable: true })
    else out[k] = toWire(x, form)
  }
  return out
}

/** JSON without losing NaN / Infinity (written as bare tokens or 1e999 that JSON.parse reads as Infinity). */
function toJsonText (v: unknown, r: Prng): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return Number.isNaN(v) ? pick(r, ['NaN', 'null']) : (v > 0 ? pick(r, ['1e999', 'Infinity']) : '-1e999')
  if (ArrayBuffer.isView(v)) return JSON.stringify(Array.from(v as Uint8Array))
  if (Array.isArray(v)) return '[' + v.map(x => toJsonText(x, r)).join(',') + ']'
  if (v !== null && typeof v === 'object') return '{' + Object.entries(v).map(([k, x]) => JSON.stringify(k) + ':' + toJsonText(x, r)).join(',') + '}'
  return JSON.stringify(v) ?? 'null'
}

// ---- byte-level mutations -----------------------------------------------------------------

const BYTES: Array<{ name: string, mustFail: boolean, apply: (r: Prng, b: Buffer, form: Form) => Buffer }> = [
  { name: 'bit-flips', mustFail: false, apply: (r, b) => { const c = Buffer.from(b); for (let i = int(r, 1, 8); i > 0; i--) c[r.int(c.length)] ^= 1 << r.int(8); return c } },
  { name: 'byte-sets', mustFail: false, apply: (r, b) => { const c = Buffer.from(b); for (let i = int(r, 1, 4); i > 0; i--) c[r.int(c.length)] = pick(r, [0x00, 0xff, 0xc1, 0xd9, 0xdb, 0xdd, 0xdf, 0xc6, 0xcb, 0x7f, 0x80, 0x22, 0x7b]); return c } },
  { name: 'truncate', mustFail: true, apply: (r, b) => b.subarray(0, r.int(b.length)) },
  { name: 'append-garbage', mustFail: false, apply: (r, b) => Buffer.concat([b, Buffer.from(Array.from({ length: int(r, 1, 16) }, () => r.int(256)))]) },
  { name: 'random-bytes', mustFail: true, apply: (r) => Buffer.from(Array.from({ length: int(r, 0, 512) }, () => r.int(256))) },
  { name: 'splice', mustFail: false, apply: (r, b) => { const at = r.int(b.length); const len = int(r, 1, 32); return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + len))]) } },
  { name: 'duplicate-key', mustFail: false, apply: (r, b, form) => duplicateKey(r, b, form) }
]

/** A top-level key written twice (msgpack: a map header one larger and a repeated entry; JSON: text). */
function duplicateKey (r: Prng, b: Buffer, form: Form): Buffer {
  if (form === 'json') {
    const text = b.toString('utf8')
    if (!text.startsWith('{')) return b
    return Buffer.from(`{"inputs":${pick(r, ['{}', 'null', '[]', '{"x":1}'])},` + text.slice(1))
  }
  // fixmap header 0x80..0x8f: bump the count and prepend one entry
  if (b[0] < 0x80 || b[0] > 0x8e) return b
  const key = pick(r, ['inputs', 'config', 'options', 'id', 'kind'])
  const entry = encode({ [key]: pick(r, [null, 1, {}, 'x']) }).subarray(1)
  return Buffer.concat([Buffer.from([b[0] + 1]), entry, b.subarray(1)])
}

// ---- cases ----------------------------------------------------------------------------

const WRONG_KINDS = ['simclr', '', 'NT-XENT', 'nt-xent ', '../../etc/passwd', '%00', 'nt_xent', '__proto__', 'constructor', 'x'.repeat(300)]

/** Case `index` of the run `seed`: the same pair always gives the same bytes. */
export function makeCase (seed: number, index: number, forms: readonly Form[] = ['msgpack', 'json', 'ws']): FuzzCase {
  const r = new Prng((seed ^ Math.imul(index + 1, 0x9E3779B1)) >>> 0)
  deep = undefined
  const form = pick(r, forms)
  let kind: string = pick(r, KINDS)
  const tree = validRequest(r, kind)
  let mutation = 'none'
  let mustFail = false
  const roll = r.float()
  if (roll < 0.04) {
    mutation = 'wrong-kind'
    mustFail = true
    kind = pick(r, WRONG_KINDS)
  } else if (roll < 0.62) {
    const m = pick(r, STRUCTURAL)
    mutation = m.name
    mustFail = m.mustFail
    m.apply(r, tree, { kind })
  }
  let wire = toWire(tree, form === 'json' ? 'json' : 'msgpack') as Tree
  if ('__replace' in wire) wire = wire.__replace as Tree
  if (form === 'ws' && wire !== null && typeof wire === 'object' && !Array.isArray(wire) && !ArrayBuffer.isView(wire)) {
    const id = r.float() < 0.1 ? oddValue(r) : index
    wire = { id, kind, ...wire }
    if (r.float() < 0.05) { mutation += '+task'; delete wire.kind; wire.task = pick(r, ['t1', '../x', '']); mustFail = true }
    if (id !== index) mustFail = mustFail || !(typeof id === 'string' && id.length <= 256) && !(typeof id === 'number' && Number.isInteger(id))
  }
  let bytes = form === 'json' ? Buffer.from(toJsonText(wire, r)) : encode(wire)
  if (deep) {
    bytes = spliceDeep(bytes, form === 'json' ? 'json' : 'msgpack', deep)
    deep = undefined
  }
  if (mutation === 'none' && roll >= 0.62 && roll < 0.97) {
    const m = pick(r, BYTES)
    mutation = m.name
    mustFail = m.mustFail
    bytes = m.apply(r, bytes, form)
  }
  const contentType = form === 'json' ? 'application/json' : pick(r, ['application/msgpack', 'application/x-msgpack'])
  return { index, form, kind, mutation, bytes, contentType, mustFail }
}

// ---- shared with the task-route cases (task-generators.ts) ------------------------------

export { pick, int, oddValue, tensor, STRUCTURAL, WRONG_KINDS }
export type { Tree, Mutation }

/**
 * One mutation of `tree` (structural from `structural`, byte-level, or none) and its encoding
 * for `form`. `wrap` turns the wire object into a stream frame (after the structural mutation,
 * before the byte-level one, as makeCase does with `id` and `kind`).
 */
export function encodeMutated (r: Prng, tree: Tree, form: Form, structural: Mutation[] = STRUCTURAL, wrap?: (wire: Tree) => Tree): { bytes: Buffer, mutation: string, mustFail: boolean } {
  deep = undefined
  let mutation = 'none'
  let mustFail = false
  const roll = r.float()
  if (roll < 0.5 && structural.length > 0) {
    const m = pick(r, structural)
    mutation = m.name
    mustFail = m.mustFail
    m.apply(r, tree, { kind: '' })
  }
  let wire = toWire(tree, form === 'json' ? 'json' : 'msgpack') as Tree
  if ('__replace' in wire) wire = wire.__replace as Tree
  if (wrap && wire !== null && typeof wire === 'object' && !Array.isArray(wire) && !ArrayBuffer.isView(wire)) wire = wrap(wire)
  let bytes = form === 'json' ? Buffer.from(toJsonText(wire, r)) : encode(wire)
  if (deep) {
    bytes = spliceDeep(bytes, form === 'json' ? 'json' : 'msgpack', deep)
    deep = undefined
  }
  if (mutation === 'none' && roll >= 0.5 && roll < 0.88) {
    const m = pick(r, BYTES)
    mutation = m.name
    mustFail = m.mustFail
    bytes = m.apply(r, bytes, form)
  }
  return { bytes, mutation, mustFail }
}
