// Builds the real app (buildServer, the same as npm start) with a small pool for tests, and
// turns the shared fixtures into msgpack / JSON bodies and answers back into numbers.
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import type { Test } from 'tap'
import { makeConfig, type ConfigInput } from '../../src/config.ts'
import { buildServer } from '../../server/app.ts'
import { decode, encode } from '../../src/wire/msgpack.ts'
import type { ConcreteBackend } from '../../src/compute/backend.ts'
import { relClose, relErrNorm, paramGradClose, type Fixture, type JsonTensor } from './fixtures.ts'

interface Teardown { teardown (fn: () => unknown): void }

/**
 * The app on `backend` with one worker (the machine has 2 cores and tap runs 2 files at
 * once), warm before it returns, closed when the test ends. `listen: true` also opens a port
 * on 127.0.0.1 (WebSocket tests) and returns its base URL.
 */
export async function testServer (t: Teardown, opts: Partial<ConfigInput> & { backend?: ConcreteBackend, listen?: boolean } = {}): Promise<{ app: FastifyInstance, url: string }> {
  const { listen, ...rest } = opts
  const config = makeConfig({ backend: 'wasm', workers: 1, queueSize: 8, logLevel: 'silent', ...rest })
  const app = await buildServer(config)
  t.teardown(() => app.close())
  await app.pool.ready()
  let url = ''
  if (listen) url = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, url }
}

/** A JSON fixture tensor as msgpack sends it: float32 little-endian bytes. */
export function msgpackTensor (t: JsonTensor): { dtype: string, shape: number[], data: Uint8Array } {
  const f = Float32Array.from(t.data)
  return { dtype: 'float32', shape: t.shape, data: new Uint8Array(f.buffer) }
}

function mapTensors<T> (tree: Record<string, JsonTensor | JsonTensor[]> | undefined, fn: (t: JsonTensor) => T): Record<string, T | T[]> | undefined {
  if (!tree) return undefined
  return Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, Array.isArray(v) ? v.map(fn) : fn(v)]))
}

/** The fixture's request with msgpack tensors (still an object: encode() it for HTTP). */
export function msgpackRequest (f: Fixture): Record<string, unknown> {
  const r = f.request
  return { ...r, inputs: mapTensors(r.inputs, msgpackTensor), ...(r.params ? { params: mapTensors(r.params, msgpackTensor) } : {}) }
}

export function msgpackBody (f: Fixture): Buffer {
  return encode(msgpackRequest(f))
}

/** A tensor of an answer as float64 numbers, whatever its form (bytes of its dtype, or numbers). */
export function tensorValues (t: { dtype: string, shape: number[], data: Uint8Array | number[] }): number[] {
  if (Array.isArray(t.data)) return t.data
  const b = t.data
  const copy = new Uint8Array(b) // aligned
  if (t.dtype === 'float32') return Array.from(new Float32Array(copy.buffer))
  if (t.dtype === 'float64') return Array.from(new Float64Array(copy.buffer))
  const u16 = new Uint16Array(copy.buffer)
  if (t.dtype === 'bfloat16') return Array.from(u16, h => new Float32Array(new Uint32Array([h << 16]).buffer)[0])
  return Array.from(u16, halfToNumber)
}

function halfToNumber (h: number): number {
  const s = h & 0x8000 ? -1 : 1
  const e = (h >> 10) & 0x1f
  const m = h & 0x3ff
  if (e === 0) return s * m * 2 ** -24
  if (e === 31) return m ? NaN : s * Infinity
  return s * (1 + m / 1024) * 2 ** (e - 15)
}

/** Parses an inject() answer of either form. */
export function answerOf (res: { headers: Record<string, unknown>, rawPayload: Buffer }): any {
  const type = String(res.headers['content-type'] ?? '')
  return type.includes('msgpack') ? decode(res.rawPayload) : JSON.parse(res.rawPayload.toString('utf8'))
}

type Assert = Pick<Test, 'ok' | 'equal'>

/** Checks an answer against a fixture with the tolerances of LOSSES.md "Fixtures". */
export function checkFixtureAnswer (t: Assert, f: Fixture, answer: any, how: string): void {
  const e = f.expected
  t.ok(relClose(answer.loss, e.loss), `${f.name} ${how}: loss ${answer.loss} vs ${e.loss}`)
  for (const [name, ref] of Object.entries(e.terms ?? {})) {
    const got = answer.terms?.[name]
    if (Array.isArray(ref)) t.ok(Array.isArray(got) && got.length === ref.length && ref.every((r, i) => relClose(got[i], r)), `${f.name} ${how}: terms.${name} ${JSON.stringify(got)} vs ${JSON.stringify(ref)}`)
    else t.ok(relClose(got, ref), `${f.name} ${how}: terms.${name} ${got} vs ${ref}`)
  }
  for (const [name, ref] of Object.entries(e.grads)) {
    const refs = Array.isArray(ref) ? ref : [ref]
    const gots = Array.isArray(ref) ? answer.grads?.[name] : [answer.grads?.[name]]
    t.equal(gots?.length, refs.length, `${f.name} ${how}: grads.${name} count`)
    refs.forEach((r, i) => {
      const g = gots?.[i]
      t.equal(JSON.stringify(g?.shape), JSON.stringify(r.shape), `${f.name} ${how}: grads.${name}[${i}] shape`)
      const err = g ? relErrNorm(tensorValues(g), r.data) : Infinity
      t.ok(err <= 1e-4, `${f.name} ${how}: grads.${name}[${i}] relative error ${err}`)
    })
  }
  for (const s of e.param_grads_sampled ?? []) {
    const g = answer.param_grads?.[s.name]
    const v = g ? tensorValues(g)[s.index] : NaN
    t.ok(paramGradClose(v, s.value), `${f.name} ${how}: param_grads ${s.name}[${s.index}] ${v} vs ${s.value}`)
  }
  t.ok(typeof answer.meta?.worker === 'number' && typeof answer.meta?.compute_ms === 'number', `${f.name} ${how}: meta ${JSON.stringify(answer.meta)}`)
}

/** Waits (polling, no fixed sleeps in assertions) until `cond` holds. */
export async function until (cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

/** An nt-xent body that keeps a wasm worker busy for a while (b 512, d 1024: about 6 GFLOP with its gradients, near a second on one wasm thread). */
export function heavyNtXent (b = 512, d = 1024): Buffer {
  const t = (seed: number): { dtype: string, shape: number[], data: Uint8Array } => {
    const f = new Float32Array(b * d)
    for (let i = 0; i < f.length; i++) f[i] = Math.sin(seed * 7919 + i) * 0.1
    return { dtype: 'float32', shape: [b, d], data: new Uint8Array(f.buffer) }
  }
  return encode({ inputs: { out_1: t(1), out_2: t(2) } })
}

export const MSGPACK = { 'content-type': 'application/msgpack' }

export interface RealServer { child: ChildProcess, url: string, log: () => string, exited: Promise<number | null> }

/**
 * A spawned server's stdout and stderr collected, once its workers are warm (it is killed at
 * teardown); throws with its output when it exits first.
 */
export async function whenReady (t: Teardown, child: ChildProcess): Promise<RealServer> {
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let log = ''
  child.stdout!.on('data', d => { log += d })
  child.stderr!.on('data', d => { log += d })
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  await until(() => /workers warm: ready/.test(log) || child.exitCode !== null, 'the server to be ready', 120_000)
  if (child.exitCode !== null) throw new Error(`the server exited ${child.exitCode}: ${log}`)
  return { child, url: /Server listening at (http:\/\/[\d.:]+)/.exec(log)![1], log: () => log, exited }
}

/**
 * The real entry (`server/start.ts`) as a child process on a free port with `args` (wasm, one
 * worker unless args say otherwise), ready when its workers are warm; killed at teardown.
 */
export async function startRealServer (t: Teardown, args: string[]): Promise<RealServer> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/start.ts', '--backend', 'wasm', '--workers', '1', '--port', '0', '--log-level', 'info', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  return await whenReady(t, child)
}

/** Opens a WebSocket to `${url}/v1/stream` and collects its answers by id. */
export async function openStream (url: string): Promise<{ ws: WebSocket, answers: Map<unknown, any>, next: (n: number) => Promise<any[]>, closed: Promise<{ code: number, reason: string }> }> {
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/stream')
  const answers = new Map<unknown, any>()
  const order: any[] = []
  let waiter: (() => void) | undefined
  ws.on('message', (data: Buffer) => {
    const a = decode(data) as any
    answers.set(a.id, a)
    order.push(a)
    waiter?.()
  })
  const closed = new Promise<{ code: number, reason: string }>(resolve => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  let taken = 0
  const next = async (n: number): Promise<any[]> => {
    await until(() => order.length >= taken + n, `${n} stream answers`)
    const out = order.slice(taken, taken + n)
    taken += n
    return out
  }
  return { ws, answers, next, closed }
}


/**
 * Every fixture through the real app on `backend`: HTTP msgpack, HTTP JSON, and all of them
 * at once (pipelined) on one WebSocket.
 */
export async function fixtureSuite (t: Test, backend: ConcreteBackend, fixtures: Fixture[]): Promise<void> {
  const { app, url } = await testServer(t, { backend, listen: true, maxInFlightPerConnection: 64 })
  await t.test('HTTP msgpack', async t => {
    for (const f of fixtures) {
      const res = await app.inject({ method: 'POST', url: `/v1/loss/${f.kind}`, headers: MSGPACK, payload: msgpackBody(f) })
      t.equal(res.statusCode, 200, `${f.name}: ${res.statusCode} ${res.statusCode !== 200 ? JSON.stringify(answerOf(res)) : ''}`)
      t.equal(res.headers['content-type'], 'application/msgpack')
      const answer = answerOf(res)
      checkFixtureAnswer(t, f, answer, 'msgpack')
      t.equal(answer.meta.backend, backend)
    }
  })
  await t.test('HTTP JSON', async t => {
    for (const f of fixtures) {
      const res = await app.inject({ method: 'POST', url: `/v1/loss/${f.kind}`, payload: f.request as object })
      t.equal(res.statusCode, 200, `${f.name}: ${res.statusCode}`)
      t.ok(String(res.headers['content-type']).startsWith('application/json'))
      checkFixtureAnswer(t, f, answerOf(res), 'json')
    }
  })
  await t.test('WebSocket, every fixture pipelined on one socket', async t => {
    const s = await openStream(url)
    for (const [i, f] of fixtures.entries()) s.ws.send(encode({ id: i, kind: f.kind, ...msgpackRequest(f) }))
    const answers = await s.next(fixtures.length)
    t.equal(new Set(answers.map(a => a.id)).size, fixtures.length, 'one answer per id')
    for (const [i, f] of fixtures.entries()) {
      const a = s.answers.get(i)
      t.equal(a?.ok, true, `${f.name}: ${JSON.stringify(a?.error)}`)
      if (a?.ok) checkFixtureAnswer(t, f, a.result, 'ws')
    }
    s.ws.close()
  })
}
