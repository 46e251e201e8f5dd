// Sends fuzz cases (generators.ts) to a running app, HTTP through inject() (the whole Fastify
// pipeline without a socket) and WebSocket frames over a real connection, and checks each
// answer: never a 5xx, a hang or a dropped connection; every error is the API.md body with a
// code of src/errors.ts whose status is the one answered; a 200 only for mutations that can
// leave a request valid, and then with a finite loss. Used by test/fuzz/*.test.ts (bounded)
// and scripts/fuzz.ts (long runs).
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { ERROR_STATUS, type ErrorCode } from '../../src/errors.ts'
import { decode } from '../../src/wire/msgpack.ts'
import { makeCase, type FuzzCase, type Form } from './generators.ts'

export interface Failure { index: number, form: Form, kind: string, mutation: string, problem: string }

export interface FuzzStats {
  seed: number
  cases: number
  ms: number
  /** HTTP status (ws: the status of the answer's code, 200 for ok, 'close <code>' for a closed socket) */
  byStatus: Record<string, number>
  byCode: Record<string, number>
  byMutation: Record<string, number>
  failures: Failure[]
}

const CASE_TIMEOUT_MS = 60_000

export function checkError (error: unknown, status: number): string | undefined {
  const e = error as { code?: unknown, message?: unknown, path?: unknown } | undefined
  if (!e || typeof e !== 'object') return `no error object: ${JSON.stringify(error)?.slice(0, 200)}`
  if (typeof e.code !== 'string' || !(e.code in ERROR_STATUS)) return `code ${String(e.code)} is not in the catalogue`
  if (ERROR_STATUS[e.code as ErrorCode] !== status) return `code ${e.code} is ${ERROR_STATUS[e.code as ErrorCode]} in the catalogue, answered ${status}`
  if (typeof e.message !== 'string' || e.message.length === 0) return 'no message'
  if (e.path !== undefined && (!Array.isArray(e.path) || !e.path.every(p => typeof p === 'string' || typeof p === 'number'))) return `bad path ${JSON.stringify(e.path)}`
  if (/TypeError|RangeError|undefined is not|Cannot read prop|stack/.test(e.message)) return `message leaks an internal error: ${e.message.slice(0, 200)}`
  return undefined
}

function checkResult (c: FuzzCase, result: unknown): string | undefined {
  if (c.mustFail) return `answered 200 to a request that mutation '${c.mutation}' makes invalid`
  const loss = (result as { loss?: unknown })?.loss
  if (typeof loss !== 'number' || !Number.isFinite(loss)) return `200 with loss ${String(loss)}`
  return undefined
}

export function parseBody (raw: Buffer, type: string): unknown {
  return type.includes('msgpack') ? decode(raw) : JSON.parse(raw.toString('utf8'))
}

export async function withTimeout<T> (p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`hang: no answer to ${what} within ${CASE_TIMEOUT_MS / 1000} s`)), CASE_TIMEOUT_MS) })
  try {
    return await Promise.race([p, t])
  } finally {
    clearTimeout(timer)
  }
}

async function httpCase (app: FastifyInstance, c: FuzzCase): Promise<{ status: string, code?: string, problem?: string }> {
  const res = await withTimeout(app.inject({ method: 'POST', url: `/v1/loss/${encodeURIComponent(c.kind)}`, headers: { 'content-type': c.contentType }, payload: c.bytes }), `case ${c.index}`)
  const status = res.statusCode
  if (status >= 500) return { status: String(status), problem: `${status}: ${res.body.slice(0, 300)}` }
  let body: any
  try {
    body = parseBody(res.rawPayload, String(res.headers['content-type'] ?? ''))
  } catch (err) {
    return { status: String(status), problem: `unreadable ${status} body (${String(res.headers['content-type'])}): ${(err as Error).message}` }
  }
  if (status === 200) return { status: '200', ...maybe(checkResult(c, body)) }
  if (status < 400) return { status: String(status), problem: `unexpected status ${status}` }
  return { status: String(status), code: body?.error?.code, ...maybe(checkError(body?.error, status)) }
}

const maybe = (problem: string | undefined): { problem?: string } => (problem ? { problem } : {})

/** One WebSocket, reopened when the server closes it (a frame over the payload limit). */
export class Stream {
  private ws?: WebSocket
  private waiting?: (m: { data?: Buffer, close?: number }) => void
  constructor (private readonly url: string) {}

  private async open (): Promise<WebSocket> {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return this.ws
    const ws = new WebSocket(this.url.replace(/^http/, 'ws') + '/v1/stream')
    ws.on('message', (data: Buffer) => { const w = this.waiting; this.waiting = undefined; w?.({ data }) })
    ws.on('close', code => { const w = this.waiting; this.waiting = undefined; w?.({ close: code }) })
    ws.on('error', () => {})
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
    this.ws = ws
    return ws
  }

  async send (bytes: Buffer): Promise<{ data?: Buffer, close?: number }> {
    const ws = await this.open()
    const answer = new Promise<{ data?: Buffer, close?: number }>(resolve => { this.waiting = resolve })
    ws.send(bytes, { binary: true })
    return answer
  }

  close (): void { this.ws?.terminate() }
}

export type Outcome = { status: string, code?: string, problem?: string }

/**
 * One stream frame sent and its answer judged: a close (1009 is the payload limit, anything
 * else a problem), an unreadable frame, an ok answer (checked by `ok`), or an error that must
 * be a catalogued 4xx with the API.md body.
 */
export async function frameOutcome (stream: Stream, bytes: Buffer, index: number, ok: (result: any) => string | undefined): Promise<Outcome> {
  const m = await withTimeout(stream.send(bytes), `frame ${index}`)
  if (m.close !== undefined) return { status: `close ${m.close}`, ...(m.close === 1009 ? {} : { problem: `the server closed the stream with ${m.close}` }) }
  let a: any
  try {
    a = decode(m.data!)
  } catch (err) {
    return { status: 'unreadable', problem: `unreadable answer frame: ${(err as Error).message}` }
  }
  if (a?.ok === true) return { status: '200', ...maybe(ok(a.result)) }
  const code = a?.error?.code
  const status = ERROR_STATUS[code as ErrorCode] ?? 0
  if (status >= 500) return { status: String(status), code, problem: `${code}: ${a.error.message}` }
  return { status: String(status), code, ...maybe(checkError(a?.error, status)) }
}

async function wsCase (stream: Stream, c: FuzzCase): Promise<Outcome> {
  return await frameOutcome(stream, c.bytes, c.index, result => checkResult(c, result))
}

export interface FuzzRunOptions {
  app: FastifyInstance
  /** the app's listening URL (WebSocket cases); without it only HTTP forms are drawn */
  url?: string
  seed: number
  cases: number
  /** first case number (a long run in slices) */
  start?: number
  progress?: (done: number, stats: FuzzStats) => void
}

export async function runFuzz (opts: FuzzRunOptions): Promise<FuzzStats> {
  const forms: Form[] = opts.url ? ['msgpack', 'json', 'ws'] : ['msgpack', 'json']
  const stats: FuzzStats = { seed: opts.seed, cases: 0, ms: 0, byStatus: {}, byCode: {}, byMutation: {}, failures: [] }
  const stream = opts.url ? new Stream(opts.url) : undefined
  const t0 = performance.now()
  const start = opts.start ?? 0
  try {
    for (let i = start; i < start + opts.cases; i++) {
      const c = makeCase(opts.seed, i, forms)
      let outcome: { status: string, code?: string, problem?: string }
      try {
        outcome = c.form === 'ws' ? await wsCase(stream!, c) : await httpCase(opts.app, c)
      } catch (err) {
        outcome = { status: 'error', problem: (err as Error).message }
      }
      stats.cases++
      stats.byStatus[outcome.status] = (stats.byStatus[outcome.status] ?? 0) + 1
      if (outcome.code) stats.byCode[outcome.code] = (stats.byCode[outcome.code] ?? 0) + 1
      stats.byMutation[c.mutation] = (stats.byMutation[c.mutation] ?? 0) + 1
      if (outcome.problem) stats.failures.push({ index: i, form: c.form, kind: c.kind, mutation: c.mutation, problem: outcome.problem })
      if (opts.progress && (i - start + 1) % 1000 === 0) opts.progress(i - start + 1, stats)
    }
  } finally {
    stream?.close()
    stats.ms = Math.round(performance.now() - t0)
  }
  return stats
}
