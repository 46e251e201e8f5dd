// Metrics for calls on task instances (server/plugins/metrics.ts): POST /v1/tasks/{id}/loss,
// GET and PUT .../state count in requests_total with the instance's kind and in
// task_calls_total by operation; stream `task` frames are counted too; no label ever takes a
// client's string (an id the server does not hold is `unknown`).
import t, { type Test } from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { encode } from '../../src/wire/msgpack.ts'
import { openStream, testServer } from '../helpers/server.ts'

const CONFIG = { num_input_channels: 3, target_dim: 4, hidden_channels: 8, num_blocks: 1 }
const OCTET = { 'content-type': 'application/octet-stream' }

function tmpDir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-metrics-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

const z = (k: number): object => ({ dtype: 'float32', shape: [2, 3, 4, 4], data: Array.from({ length: 96 }, (_, i) => Math.fround(Math.sin(i * 0.7 + k) * 0.8)) })
const zBytes = (k: number): object => ({ dtype: 'float32', shape: [2, 3, 4, 4], data: new Uint8Array(Float32Array.from({ length: 96 }, (_, i) => Math.sin(i * 0.7 + k) * 0.8).buffer) })

interface Sample { name: string, labels: Record<string, string>, value: number }

/** The Prometheus text of /metrics as samples. */
async function scrape (app: FastifyInstance): Promise<{ text: string, samples: Sample[] }> {
  const text = (await app.inject({ url: '/metrics' })).body
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? ([-+0-9.eE]+|NaN)$/.exec(line)
    if (!m) continue
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map(x => [x[1], x[2]]))
    samples.push({ name: m[1], labels, value: Number(m[3]) })
  }
  return { text, samples }
}

/** The sum of `name` over the samples whose labels include `where`. */
function sum (samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples.filter(s => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0)
}

t.test('instance calls over HTTP are counted with the instance\'s kind', async t => {
  const { app } = await testServer(t, { dataDir: tmpDir(t) })
  const cpc = (await app.inject({ method: 'POST', url: '/v1/tasks', payload: { kind: 'cpc', config: CONFIG, seed: 1, optimizer: { name: 'sgd', lr: 0.1 } } })).json().id
  const nt = (await app.inject({ method: 'POST', url: '/v1/tasks', payload: { kind: 'nt-xent' } })).json().id
  const before = (await scrape(app)).samples

  for (let k = 0; k < 2; k++) t.equal((await app.inject({ method: 'POST', url: `/v1/tasks/${cpc}/loss`, payload: { inputs: { z: z(k) } } })).statusCode, 200)
  t.equal((await app.inject({ method: 'POST', url: `/v1/tasks/${cpc}/loss`, payload: { inputs: { z: z(0) }, config: {} } })).statusCode, 400)
  const out = (seed: number): object => ({ dtype: 'float32', shape: [2, 4], data: Array.from({ length: 8 }, (_, i) => Math.sin(seed + i)) })
  t.equal((await app.inject({ method: 'POST', url: `/v1/tasks/${nt}/loss`, payload: { inputs: { out_1: out(1), out_2: out(2) } } })).statusCode, 200)
  const exported = await app.inject({ url: `/v1/tasks/${cpc}/state?optimizer=true` })
  t.equal(exported.statusCode, 200)
  t.equal((await app.inject({ method: 'PUT', url: `/v1/tasks/${cpc}/state`, headers: OCTET, payload: exported.rawPayload })).statusCode, 200)
  // ids the server does not hold, one well-formed and one not: labelled unknown
  const absent = 't_' + 'a'.repeat(20)
  t.equal((await app.inject({ method: 'POST', url: `/v1/tasks/${absent}/loss`, payload: { inputs: { z: z(0) } } })).statusCode, 404)
  t.equal((await app.inject({ url: '/v1/tasks/not-an-id-xyz/state' })).statusCode, 404)
  // not instance calls: not counted as requests
  t.equal((await app.inject({ url: `/v1/tasks/${cpc}` })).statusCode, 200)
  t.equal((await app.inject({ url: '/v1/tasks' })).statusCode, 200)

  const { text, samples } = await scrape(app)
  const moved = (name: string, where: Record<string, string>): number => sum(samples, name, where) - sum(before, name, where)
  t.equal(moved('ssl_loss_requests_total', { kind: 'cpc', transport: 'http', status: '200' }), 4, 'cpc: 2 steps, export, import')
  t.equal(moved('ssl_loss_requests_total', { kind: 'cpc', transport: 'http', status: '400' }), 1, 'cpc: the refused body')
  t.equal(moved('ssl_loss_requests_total', { kind: 'nt-xent', transport: 'http', status: '200' }), 1, 'an nt-xent instance counts as nt-xent')
  t.equal(moved('ssl_loss_requests_total', { kind: 'unknown', transport: 'http', status: '404' }), 2, 'ids the server does not hold')
  t.equal(moved('ssl_loss_requests_total', {}), 8, 'nothing else counted (GET /v1/tasks and /v1/tasks/{id} are not calls)')
  t.equal(moved('ssl_loss_request_seconds_count', { kind: 'cpc', transport: 'http' }), 5)
  t.equal(moved('ssl_loss_task_calls_total', { kind: 'cpc', op: 'loss', transport: 'http', status: '200' }), 2)
  t.equal(moved('ssl_loss_task_calls_total', { kind: 'cpc', op: 'loss', transport: 'http', status: '400' }), 1)
  t.equal(moved('ssl_loss_task_calls_total', { kind: 'cpc', op: 'state_export', transport: 'http', status: '200' }), 1)
  t.equal(moved('ssl_loss_task_calls_total', { kind: 'cpc', op: 'state_import', transport: 'http', status: '200' }), 1)
  t.equal(moved('ssl_loss_task_calls_total', { kind: 'unknown', op: 'state_export', transport: 'http', status: '404' }), 1)
  const stateBytes = exported.rawPayload.byteLength
  t.ok(moved('ssl_loss_bytes_total', { direction: 'out', transport: 'http' }) >= stateBytes, 'the exported state counts as bytes out')
  t.ok(moved('ssl_loss_bytes_total', { direction: 'in', transport: 'http' }) >= stateBytes, 'the imported state counts as bytes in')
  for (const id of [cpc, nt, absent, 'not-an-id-xyz']) t.notOk(text.includes(id), `no label carries the id ${id}`)
  // the service's own metrics (prom-client's nodejs_gc_duration_seconds has a kind="minor" of its own)
  const ours = /^ssl_loss_(requests_total|request_seconds|queue_seconds|compute_seconds|jobs_total|task_calls_total)/
  const kinds = new Set(samples.filter(s => ours.test(s.name) && s.labels.kind !== undefined).map(s => s.labels.kind))
  t.ok(kinds.has('cpc') && kinds.has('unknown'))
  t.same([...kinds].filter(k => !['feature-map-contrastive', 'cpc', 'amdim-nce', 'nt-xent', 'unknown'].includes(k)), [], 'kind labels are kind names or unknown')
})

t.test('stream task frames are counted', async t => {
  const { app, url } = await testServer(t, { dataDir: tmpDir(t), listen: true })
  const cpc = (await app.inject({ method: 'POST', url: '/v1/tasks', payload: { kind: 'cpc', config: CONFIG, seed: 2, optimizer: { name: 'adam', lr: 0.01 } } })).json().id
  const before = (await scrape(app)).samples
  const s = await openStream(url)
  for (let k = 0; k < 3; k++) s.ws.send(encode({ id: k, task: cpc, inputs: { z: zBytes(k) }, options: { gradients: false } }))
  s.ws.send(encode({ id: 'gone', task: 't_' + 'b'.repeat(20), inputs: { z: zBytes(0) } }))
  const answers = await s.next(4)
  t.same(answers.filter(a => a.ok).map(a => a.result.step).sort(), [1, 2, 3])
  t.equal(s.answers.get('gone').error.code, 'unknown_task')
  s.ws.close()

  const { text, samples } = await scrape(app)
  const moved = (name: string, where: Record<string, string>): number => sum(samples, name, where) - sum(before, name, where)
  t.equal(moved('ssl_loss_requests_total', { transport: 'ws', status: '200' }), 3, 'three answered steps')
  t.equal(moved('ssl_loss_requests_total', { kind: 'cpc', transport: 'ws', status: '200' }), 3, 'labelled with the instance\'s kind')
  t.equal(moved('ssl_loss_task_calls_total', { kind: 'cpc', op: 'loss', transport: 'ws', status: '200' }), 3, 'and counted as task calls')
  t.equal(moved('ssl_loss_requests_total', { transport: 'ws', status: '404' }), 1, 'and the unknown instance')
  t.equal(moved('ssl_loss_requests_total', { kind: 'unknown', transport: 'ws', status: '404' }), 1, 'an instance the server does not hold is unknown')
  t.equal(moved('ssl_loss_jobs_total', { kind: 'cpc', outcome: 'ok' }), 3, 'the worker ran three cpc jobs')
  t.ok(moved('ssl_loss_bytes_total', { direction: 'out', transport: 'ws' }) > 0)
  t.notOk(text.includes(cpc), 'no label carries the id')
})

t.test('a task instance id given to metrics.request is labelled with its kind, as a loss call', async t => {
  // what the stream route reports for a `task` frame once the session hands it the id
  const { app } = await testServer(t, { dataDir: tmpDir(t) })
  const cpc = (await app.inject({ method: 'POST', url: '/v1/tasks', payload: { kind: 'cpc', config: CONFIG, seed: 3 } })).json().id
  app.metrics.request(cpc, 'ws', 200, 0.01)
  app.metrics.request('t_' + 'c'.repeat(20), 'ws', 404, 0)
  app.metrics.request('simclr', 'ws', 404, 0)
  const { text, samples } = await scrape(app)
  t.equal(sum(samples, 'ssl_loss_requests_total', { kind: 'cpc', transport: 'ws', status: '200' }), 1)
  t.equal(sum(samples, 'ssl_loss_task_calls_total', { kind: 'cpc', op: 'loss', transport: 'ws', status: '200' }), 1)
  t.equal(sum(samples, 'ssl_loss_requests_total', { kind: 'unknown', transport: 'ws', status: '404' }), 2)
  t.equal(sum(samples, 'ssl_loss_task_calls_total', { kind: 'unknown', op: 'loss', transport: 'ws', status: '404' }), 1, 'a well-formed id counts as a task call, of kind unknown')
  t.notOk(text.includes('simclr'), 'a client\'s kind name is never a label')
})
