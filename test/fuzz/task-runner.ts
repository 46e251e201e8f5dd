// Runs the task-route fuzz cases (task-generators.ts) against a running app with a data
// directory: HTTP through inject(), `task` frames over a real WebSocket. Each answer is checked
// as runner.ts checks evaluations (never a 5xx, a hang or a dropped stream; errors are the
// API.md body with a catalogue code matching the status; 2xx only where the case can be
// valid), plus: a 201 is a real instance (deleted again at once, 204), a 204 never answers a
// bad id, GET state answers safetensors. The run begins by making its targets and a snapshot
// (every instance's id, step and exported state, workers' live tensors) and ends by comparing:
// the sentinels bit-identical, the same instances listed, live tensors unchanged.
import type { FastifyInstance } from 'fastify'
import { TASK_ID } from '../../schemas/task.ts'
import { checkError, frameOutcome, parseBody, Stream, withTimeout, type FuzzStats, type Outcome } from './runner.ts'
import { makeTaskCase, TASK_CPC_CONFIG, type TaskCase, type TaskTargets } from './task-generators.ts'

const maybe = (problem: string | undefined): { problem?: string } => (problem ? { problem } : {})

async function create (app: FastifyInstance, body: object): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/v1/tasks', payload: body })
  if (res.statusCode !== 201) throw new Error(`creating a fuzz target: ${res.statusCode} ${res.body}`)
  return res.json().id
}

async function exportState (app: FastifyInstance, id: string): Promise<Buffer> {
  const res = await app.inject({ url: `/v1/tasks/${id}/state?optimizer=true` })
  if (res.statusCode !== 200) throw new Error(`exporting ${id}: ${res.statusCode} ${res.body}`)
  return res.rawPayload
}

/** The three targets of a run (see task-generators.ts). */
export async function makeTargets (app: FastifyInstance): Promise<TaskTargets> {
  const cpc = await create(app, { kind: 'cpc', config: TASK_CPC_CONFIG, seed: 1 })
  const ntxent = await create(app, { kind: 'nt-xent', config: { temperature: 0.5 } })
  const scratch = await create(app, { kind: 'cpc', config: TASK_CPC_CONFIG, seed: 2, optimizer: { name: 'adam', lr: 0.01 } })
  return { cpc, ntxent, scratch, scratchState: await exportState(app, scratch) }
}

export interface TaskSnapshot { ids: string[], states: Record<string, Buffer>, live: number[] }

/** Every instance's state (which also loads it into its worker) and then the live tensors. */
export async function snapshot (app: FastifyInstance): Promise<TaskSnapshot> {
  const list = (await app.inject({ url: '/v1/tasks' })).json().tasks.map((x: { id: string }) => x.id).sort()
  const states: Record<string, Buffer> = {}
  for (const id of list) states[id] = await exportState(app, id)
  return { ids: list, states, live: app.pool.workers().map(w => w.liveTensors) }
}

async function httpCase (app: FastifyInstance, c: TaskCase): Promise<Outcome> {
  const res = await withTimeout(app.inject({
    method: c.method,
    url: c.url,
    ...(c.contentType ? { headers: { 'content-type': c.contentType } } : {}),
    ...(c.bytes ? { payload: c.bytes } : {})
  }), `case ${c.index}`)
  const status = res.statusCode
  if (status >= 500) return { status: String(status), problem: `${status}: ${res.body.slice(0, 300)}` }
  if (status >= 200 && status < 300) {
    if (c.mustFail) return { status: String(status), problem: `answered ${status} to a request that '${c.mutation}' makes invalid` }
    if (status === 201) {
      const id = (() => { try { return (parseBody(res.rawPayload, String(res.headers['content-type'])) as { id?: unknown })?.id } catch { return undefined } })()
      if (c.op !== 'create' || typeof id !== 'string' || !TASK_ID.test(id)) return { status: '201', problem: `201 without an instance id: ${res.body.slice(0, 200)}` }
      const del = await app.inject({ method: 'DELETE', url: `/v1/tasks/${id}` })
      return { status: '201', ...maybe(del.statusCode === 204 ? undefined : `deleting the created ${id}: ${del.statusCode}`) }
    }
    if (status === 204) return { status: '204', problem: `204 to ${c.method} ${c.url.slice(0, 80)}: a bad id deleted something` }
    if (c.op === 'state-get') return { status: '200', ...maybe(res.headers['content-type'] === 'application/octet-stream' ? undefined : `state answered as ${String(res.headers['content-type'])}`) }
    if (c.op === 'loss') {
      const loss = (parseBody(res.rawPayload, String(res.headers['content-type'])) as { loss?: unknown })?.loss
      return { status: '200', ...maybe(typeof loss === 'number' && Number.isFinite(loss) ? undefined : `200 with loss ${String(loss)}`) }
    }
    return { status: String(status) }
  }
  if (status < 400) return { status: String(status), problem: `unexpected status ${status}` }
  let body: any
  try {
    body = parseBody(res.rawPayload, String(res.headers['content-type'] ?? ''))
  } catch (err) {
    return { status: String(status), problem: `unreadable ${status} body: ${(err as Error).message}` }
  }
  return { status: String(status), code: body?.error?.code, ...maybe(checkError(body?.error, status)) }
}

async function wsCase (stream: Stream, c: TaskCase): Promise<Outcome> {
  return await frameOutcome(stream, c.bytes!, c.index, result => {
    if (c.mustFail) return `answered ok to a frame that '${c.mutation}' makes invalid`
    const loss = result?.loss
    return typeof loss === 'number' && Number.isFinite(loss) ? undefined : `ok with loss ${String(loss)}`
  })
}

export interface TaskFuzzOptions {
  app: FastifyInstance
  /** the app's listening URL (stream frames); without it only HTTP cases */
  url?: string
  seed: number
  cases: number
  start?: number
  targets: TaskTargets
  progress?: (done: number, stats: FuzzStats) => void
}

export async function runTaskFuzz (opts: TaskFuzzOptions): Promise<FuzzStats> {
  const stats: FuzzStats = { seed: opts.seed, cases: 0, ms: 0, byStatus: {}, byCode: {}, byMutation: {}, failures: [] }
  const stream = opts.url ? new Stream(opts.url) : undefined
  const t0 = performance.now()
  const start = opts.start ?? 0
  try {
    for (let i = start; i < start + opts.cases; i++) {
      const c = makeTaskCase(opts.seed, i, opts.targets, stream !== undefined)
      let outcome: Outcome
      try {
        outcome = c.op === 'ws-task' ? await wsCase(stream!, c) : await httpCase(opts.app, c)
      } catch (err) {
        outcome = { status: 'error', problem: (err as Error).message }
      }
      stats.cases++
      const key = `${c.op} ${outcome.status}`
      stats.byStatus[key] = (stats.byStatus[key] ?? 0) + 1
      if (outcome.code) stats.byCode[outcome.code] = (stats.byCode[outcome.code] ?? 0) + 1
      const mut = `${c.op}:${c.mutation}`
      stats.byMutation[mut] = (stats.byMutation[mut] ?? 0) + 1
      if (outcome.problem) stats.failures.push({ index: i, form: c.op === 'ws-task' ? 'ws' : 'msgpack', kind: `${c.method} ${c.url.slice(0, 60)}`, mutation: c.mutation, problem: outcome.problem })
      if (opts.progress && (i - start + 1) % 1000 === 0) opts.progress(i - start + 1, stats)
    }
  } finally {
    stream?.close()
    stats.ms = Math.round(performance.now() - t0)
  }
  return stats
}

/** What differs between two snapshots, for the sentinels and the instance list (empty: intact). */
export function compareSnapshots (before: TaskSnapshot, after: TaskSnapshot, targets: TaskTargets): string[] {
  const out: string[] = []
  if (before.ids.join() !== after.ids.join()) out.push(`instances before ${before.ids.join(',')}, after ${after.ids.join(',')}`)
  for (const id of [targets.cpc, targets.ntxent]) {
    if (!after.states[id] || !before.states[id].equals(after.states[id])) out.push(`sentinel ${id}: its state changed`)
  }
  if (before.live.join() !== after.live.join()) out.push(`live tensors per worker ${before.live.join(',')} -> ${after.live.join(',')}`)
  return out
}
