// Fuzz cases for the task-instance routes (API.md "Task instances") and stream `task`
// frames, drawn like generators.ts from (seed, case number):
//  - POST /v1/tasks with mutated configs, kinds, optimizers and seeds;
//  - POST /v1/tasks/{id}/loss and WebSocket {id, task, inputs, options} frames with the
//    evaluation mutations of generators.ts plus task ones (config/params sent, update on an
//    instance without optimizer);
//  - GET /v1/tasks/{id}, GET/PUT/DELETE /v1/tasks/{id}/state and DELETE /v1/tasks/{id} with bad
//    ids (path traversal, huge, unicode, NUL, near misses of real ids) and bad queries;
//  - PUT .../state with mutated safetensors bytes (header length, header JSON, metadata,
//    dtypes, shapes, offsets, bit flips, truncation).
// Targets (made by the runner before the run): `sentinels` must stay bit-identical (a cpc
// instance without optimizer and an nt-xent instance: no valid call can change them, so
// they get every loss and read case); `scratch`, a cpc instance with an optimizer, takes the
// updating steps and the imports and may change.
import { Prng } from '../../src/tasks/prng.ts'
import { encodeMutated, int, oddValue, pick, STRUCTURAL, tensor, WRONG_KINDS, type Mutation, type Tree } from './generators.ts'

export const TASK_CPC_CONFIG = { num_input_channels: 2, target_dim: 2, hidden_channels: 2, num_blocks: 1 }

export interface TaskTargets {
  /** cpc without optimizer */
  cpc: string
  ntxent: string
  /** cpc with adam: steps and imports */
  scratch: string
  /** scratch's exported state (?optimizer=true) when the run began: the PUT base */
  scratchState: Buffer
}

export interface TaskCase {
  index: number
  op: 'create' | 'loss' | 'ws-task' | 'info' | 'state-get' | 'state-put' | 'delete'
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  /** HTTP path with query (ws: unused) */
  url: string
  contentType?: string
  bytes?: Buffer
  mutation: string
  mustFail: boolean
}

const fakeId = (r: Prng): string => 't_' + Array.from({ length: 20 }, () => 'abcdefghijklmnopqrstuvwxyz234567'[r.int(32)]).join('')

/** Ids that are not an instance of this server, percent-encoded as a URL segment. */
function badId (r: Prng, real: string): string {
  return pick(r, [
    () => fakeId(r), // well formed, unknown
    () => encodeURIComponent(real.toUpperCase()),
    () => encodeURIComponent(real + ' '),
    () => real.slice(0, -1),
    () => real + 'a',
    () => encodeURIComponent(`${real}.safetensors`),
    () => '..%2F..%2Fetc%2Fpasswd',
    () => '%2e%2e',
    () => '..',
    () => encodeURIComponent(`../${real}`),
    () => `${real}%2F..%2F${real}`,
    () => 'quarantine',
    () => '__proto__',
    () => 'constructor',
    () => '%00',
    () => `${real}%00`,
    () => '%ff%fe',
    () => '%F0%9F%92%A9',
    () => encodeURIComponent('t_' + 'ä'.repeat(20)),
    () => encodeURIComponent('t_\u202eaaaaaaaaaaaaaaaaaaa'),
    () => 't_' + '1'.repeat(20),
    () => 'x'.repeat(pick(r, [99, 101, 1000, 10_000])),
    () => '%20',
    () => '-1'
  ])()
}

/** Create mutations that do not need tensors. */
const CREATE_STRUCTURAL: Mutation[] = [
  ...STRUCTURAL.filter(m => ['type-swap', 'delete-field', 'extra-field', 'non-finite-config', 'huge-config', 'proto-key', 'giant-string', 'giant-array', 'deep-nesting', 'not-a-map'].includes(m.name)),
  { name: 'create-wrong-kind', mustFail: true, apply: (r, tree) => { tree.kind = pick(r, WRONG_KINDS) } },
  { name: 'create-bad-optimizer', mustFail: false, apply: (r, tree) => { tree.optimizer = { ...(tree.optimizer as Tree ?? { name: 'adam', lr: 0.01 }), [pick(r, ['name', 'lr', 'betas', 'eps', 'weight_decay', 'momentum', 'nesterov', 'amsgrad', 'x'])]: pick(r, [() => 'rmsprop', () => -1, () => 0, () => NaN, () => Infinity, () => [2, 3], () => [0.9], () => 'x', () => oddValue(r)])() } } },
  { name: 'create-optimizer-without-params', mustFail: true, apply: (r, tree) => { tree.kind = pick(r, ['nt-xent', 'amdim-nce', 'feature-map-contrastive']); tree.config = {}; tree.optimizer = { name: 'sgd', lr: 0.1 } } },
  { name: 'create-bad-seed', mustFail: true, apply: (r, tree) => { tree.seed = pick(r, [-1, 2 ** 32, 1.5, NaN, '7', null]) } },
  { name: 'create-too-large', mustFail: true, apply: (r, tree) => { tree.kind = 'cpc'; tree.config = { num_input_channels: 64, target_dim: 64, hidden_channels: pick(r, [1024, 4096]), num_blocks: pick(r, [2, 5]) } } }
]

function createCase (r: Prng, index: number): TaskCase {
  const kind = pick(r, ['cpc', 'cpc', 'nt-xent', 'amdim-nce', 'feature-map-contrastive'])
  const tree: Tree = kind === 'cpc'
    ? { kind, config: { ...TASK_CPC_CONFIG }, seed: r.nextUint32(), ...(r.float() < 0.7 ? { optimizer: pick(r, [{ name: 'adam', lr: 0.01 }, { name: 'sgd', lr: 0.1, momentum: 0.9 }]) } : {}) }
    : { kind, ...(r.float() < 0.5 ? { config: kind === 'nt-xent' ? { temperature: 0.5 } : {} } : {}) }
  const form = pick(r, ['msgpack', 'json'] as const)
  const m = encodeMutated(r, tree, form, CREATE_STRUCTURAL)
  return { index, op: 'create', method: 'POST', url: '/v1/tasks', contentType: form === 'json' ? 'application/json' : 'application/msgpack', ...m }
}

function lossTree (r: Prng, kind: 'cpc' | 'nt-xent', options: Tree): Tree {
  const b = int(r, 2, 3)
  if (kind === 'cpc') return { inputs: { z: tensor(r, [b, 2, int(r, 3, 4), 2]) }, options }
  const d = int(r, 1, 5)
  return { inputs: { out_1: tensor(r, [b, d]), out_2: tensor(r, [b, d]) }, ...(Object.keys(options).length ? { options } : {}) }
}

const TASK_LOSS: Mutation[] = [
  ...STRUCTURAL,
  { name: 'task-config-sent', mustFail: true, apply: (r, tree) => { tree.config = pick(r, [{}, { ...TASK_CPC_CONFIG }, { temperature: 0.1 }]) } },
  { name: 'task-params-sent', mustFail: true, apply: (_r, tree) => { tree.params = {} } }
]

function lossCase (r: Prng, index: number, targets: TaskTargets, ws: boolean): TaskCase {
  const which = pick(r, ['cpc', 'ntxent', 'scratch'] as const)
  const id = targets[which]
  const kind = which === 'ntxent' ? 'nt-xent' : 'cpc'
  const options: Tree = kind === 'cpc' ? { gradients: r.float() < 0.5 } : {}
  let extra: { mutation: string, mustFail: boolean } | undefined
  // update on an instance without optimizer must be refused
  if (which !== 'scratch' && r.float() < 0.05) { options.update = true; extra = { mutation: 'update-without-optimizer', mustFail: true } }
  const tree = lossTree(r, kind, options)
  const bad = r.float() < 0.08
  const target = bad ? badId(r, id) : id
  const form = ws ? 'ws' : pick(r, ['msgpack', 'json'] as const)
  const frameId = index
  const m = encodeMutated(r, tree, form, TASK_LOSS, ws ? wire => ({ id: frameId, task: decodeURIComponentSafe(target), ...wire }) : undefined)
  const mutation = [extra?.mutation, bad ? 'bad-id' : undefined, m.mutation].filter(Boolean).join('+')
  const mustFail = m.mustFail || bad || (extra?.mustFail ?? false)
  if (ws) return { index, op: 'ws-task', method: 'POST', url: '', bytes: m.bytes, mutation, mustFail }
  return { index, op: 'loss', method: 'POST', url: `/v1/tasks/${target}/loss`, contentType: form === 'json' ? 'application/json' : pick(r, ['application/msgpack', 'application/x-msgpack']), bytes: m.bytes, mutation, mustFail }
}

function decodeURIComponentSafe (s: string): string {
  try { return decodeURIComponent(s) } catch { return s }
}

// ---- safetensors mutations (PUT .../state) --------------------------------------------

/** header length (u64 LE), header JSON, data: the three parts of a safetensors file */
function split (file: Buffer): { header: any, data: Buffer } {
  const n = Number(file.readBigUInt64LE(0))
  return { header: JSON.parse(file.subarray(8, 8 + n).toString('utf8')), data: file.subarray(8 + n) }
}

function join (header: unknown, data: Buffer, pad = true): Buffer {
  let text = JSON.stringify(header)
  if (pad) text += ' '.repeat((8 - (text.length % 8)) % 8)
  const h = Buffer.from(text, 'utf8')
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(h.length))
  return Buffer.concat([len, h, data])
}

const SAFETENSORS: Array<{ name: string, mustFail: boolean, apply: (r: Prng, file: Buffer) => Buffer }> = [
  { name: 'st-none', mustFail: false, apply: (_r, f) => f },
  { name: 'st-bit-flips', mustFail: false, apply: (r, f) => { const c = Buffer.from(f); for (let i = int(r, 1, 8); i > 0; i--) c[r.int(c.length)] ^= 1 << r.int(8); return c } },
  { name: 'st-data-bit-flip', mustFail: false, apply: (r, f) => { const c = Buffer.from(f); const start = 8 + Number(c.readBigUInt64LE(0)); c[start + r.int(c.length - start)] ^= 1 << r.int(8); return c } },
  { name: 'st-truncate', mustFail: true, apply: (r, f) => f.subarray(0, r.int(f.length)) },
  { name: 'st-append', mustFail: true, apply: (r, f) => Buffer.concat([f, Buffer.alloc(int(r, 1, 64), 7)]) },
  { name: 'st-empty', mustFail: true, apply: () => Buffer.alloc(0) },
  { name: 'st-random', mustFail: true, apply: (r) => Buffer.from(Array.from({ length: int(r, 0, 600) }, () => r.int(256))) },
  {
    name: 'st-header-length', mustFail: true, apply: (r, f) => {
      const c = Buffer.from(f)
      const n = c.readBigUInt64LE(0)
      c.writeBigUInt64LE(pick(r, [0n, 1n, n - 1n, n + 1n, n + 8n, BigInt(c.length), 2n ** 62n, 2n ** 64n - 1n, 100_000_000n]))
      return c
    }
  },
  {
    name: 'st-header-json', mustFail: false, apply: (r, f) => {
      const { header, data } = split(f)
      const names = Object.keys(header).filter(k => k !== '__metadata__')
      const t = header[pick(r, names)]
      pick(r, [
        () => { delete header[pick(r, names)] },
        () => { t.dtype = pick(r, ['F16', 'BF16', 'F64', 'I64', 'U8', 'BOOL', 'f32', '', 7]) },
        () => { t.shape = pick(r, [[], [0], [-1], [2 ** 40], [1.5], ['2'], [...t.shape, 1], [...t.shape].reverse(), null]) },
        () => { t.data_offsets = pick(r, [[t.data_offsets[1], t.data_offsets[0]], [0, 0], [0, data.length + 4], [-4, t.data_offsets[1]], [t.data_offsets[0]], [t.data_offsets[0] + 2, t.data_offsets[1] + 2], 'x', null]) },
        () => { header[`extra.${r.int(100)}`] = { dtype: 'F32', shape: [1], data_offsets: [0, 4] } },
        () => { header[pick(r, ['__proto__', 'constructor', 'toString'])] = { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }
      ])()
      return join(header, data, r.float() < 0.8)
    }
  },
  {
    name: 'st-metadata', mustFail: false, apply: (r, f) => {
      const { header, data } = split(f)
      const meta = header.__metadata__ ?? {}
      const key = pick(r, [...Object.keys(meta), 'step', 'kind', 'id', 'config', 'optimizer', 'format', 'extra'])
      pick(r, [
        () => { delete meta[key] },
        () => { meta[key] = pick(r, ['-1', '1.5', 'NaN', '1e400', 'x', '', '{}', '{"num_input_channels":', 'nt-xent', 't_aaaaaaaaaaaaaaaaaaaa', '"'.repeat(10), 'x'.repeat(100_000)]) },
        () => { meta[key] = pick(r, [1, null, {}, [], true]) },
        () => { header.__metadata__ = pick(r, [null, [], 'x', 1]) }
      ])()
      return join(header, data)
    }
  },
  { name: 'st-header-not-json', mustFail: true, apply: (r, f) => { const { data } = split(f); const text = Buffer.from(pick(r, ['{', '[]', 'null', '"x"', '{"a":1,}', '\u0000'.repeat(8), '{"__proto__":{"x":1}}'])); const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(text.length)); return Buffer.concat([len, text, data]) } }
]

function putCase (r: Prng, index: number, targets: TaskTargets): TaskCase {
  const m = pick(r, SAFETENSORS)
  const bytes = m.apply(r, targets.scratchState)
  const roll = r.float()
  // mostly the scratch instance; a bad id or a sentinel only with a wrong media type or a bad id
  if (roll < 0.1) return { index, op: 'state-put', method: 'PUT', url: `/v1/tasks/${badId(r, targets.scratch)}/state`, contentType: 'application/octet-stream', bytes, mutation: `${m.name}+bad-id`, mustFail: true }
  if (roll < 0.2) return { index, op: 'state-put', method: 'PUT', url: `/v1/tasks/${pick(r, [targets.cpc, targets.ntxent, targets.scratch])}/state`, contentType: pick(r, ['application/json', 'application/msgpack', 'text/plain', 'application/octet-streamx']), bytes, mutation: `${m.name}+media-type`, mustFail: true }
  return { index, op: 'state-put', method: 'PUT', url: `/v1/tasks/${targets.scratch}/state`, contentType: 'application/octet-stream', bytes, mutation: m.name, mustFail: m.mustFail }
}

function readCase (r: Prng, index: number, targets: TaskTargets): TaskCase {
  const real = pick(r, [targets.cpc, targets.ntxent, targets.scratch])
  const bad = r.float() < 0.6
  const id = bad ? badId(r, real) : real
  const op = pick(r, ['info', 'state-get', 'state-get', 'delete'] as const)
  if (op === 'delete') {
    // never a real id: the instances must survive the run
    return { index, op, method: 'DELETE', url: pick(r, [`/v1/tasks/${badId(r, real)}`, `/v1/tasks/${badId(r, real)}/state`]), mutation: 'delete-bad-id', mustFail: true }
  }
  if (op === 'info') return { index, op, method: 'GET', url: `/v1/tasks/${id}`, mutation: bad ? 'bad-id' : 'none', mustFail: bad }
  const query = pick(r, ['', '?optimizer=true', '?optimizer=0', '?optimizer=yes', '?optimizer=', '?optimizer=true&optimizer=false', '?x=1', '?optimizer=%00', '?' + 'a'.repeat(5000) + '=1'])
  const badQuery = !['', '?optimizer=true', '?optimizer=0'].includes(query)
  return { index, op, method: 'GET', url: `/v1/tasks/${id}/state${query}`, mutation: [bad ? 'bad-id' : '', badQuery ? 'bad-query' : ''].filter(Boolean).join('+') || 'none', mustFail: bad || badQuery }
}

/** Case `index` of the run `seed` against `targets`: the same triple always gives the same case. */
export function makeTaskCase (seed: number, index: number, targets: TaskTargets, ws: boolean): TaskCase {
  const r = new Prng((seed ^ Math.imul(index + 1, 0x85EBCA77)) >>> 0)
  const roll = r.float()
  if (roll < 0.2) return createCase(r, index)
  if (roll < 0.55) return lossCase(r, index, targets, ws && r.float() < 0.35)
  if (roll < 0.75) return putCase(r, index, targets)
  return readCase(r, index, targets)
}
