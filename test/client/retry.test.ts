// Retries against a scripted stub server (node:http): 429/503 are retried after Retry-After
// or the capped backoff, other errors are not, task steps that may update are not unless
// asked, and the last refusal surfaces as a LossClientError with the server's fields.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { encode } from '../../src/wire/msgpack.ts'
import { LossClient, LossClientError, backoffMs, parseRetryAfter, DEFAULT_RETRY } from '../../src/client/index.ts'

interface Scripted { status: number, code?: string, retryAfter?: string }

/** A server that answers the scripted statuses in order, then a tiny nt-xent answer. */
async function stub (t: { teardown: (fn: () => unknown) => void }, script: Scripted[]): Promise<{ url: string, hits: () => number }> {
  let hits = 0
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const s = script[hits++]
      if (s) {
        res.writeHead(s.status, { 'content-type': 'application/json', ...(s.retryAfter !== undefined ? { 'retry-after': s.retryAfter } : {}) })
        res.end(JSON.stringify({ error: { code: s.code ?? 'overloaded', message: `scripted ${s.status}`, path: ['inputs'] } }))
        return
      }
      const g = new Float32Array([0.5, -0.5])
      res.writeHead(200, { 'content-type': 'application/msgpack' })
      res.end(encode({ loss: 1.25, terms: {}, grads: { out_1: { dtype: 'float32', shape: [1, 2], data: new Uint8Array(g.buffer) } }, meta: { backend: 'stub', worker: 0, queue_ms: 0, compute_ms: 0 } }))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => hits }
}

const inputs = { out_1: { shape: [1, 2], data: new Float32Array([1, 2]) }, out_2: { shape: [1, 2], data: new Float32Array([3, 4]) } }

t.test('a 429 then success: retried after Retry-After, one result', async t => {
  const s = await stub(t, [{ status: 429, retryAfter: '0' }])
  const attempts: number[] = []
  const client = new LossClient({ url: s.url, onExchange: e => attempts.push(e.attempts) })
  const r = await client.ntXent({ inputs })
  t.equal(r.loss, 1.25)
  t.same(Array.from((r.grads!.out_1 as { data: Float32Array }).data), [0.5, -0.5])
  t.equal(s.hits(), 2, 'the server saw the request twice')
  t.same(attempts, [2])
})

t.test('503s then success within the retry budget; HTTP-date Retry-After', async t => {
  const s = await stub(t, [{ status: 503, code: 'worker_failed', retryAfter: new Date(Date.now() - 1000).toUTCString() }, { status: 503, code: 'not_ready' }])
  const client = new LossClient({ url: s.url, retry: { retries: 2, baseMs: 1, maxMs: 5 } })
  t.equal((await client.ntXent({ inputs })).loss, 1.25)
  t.equal(s.hits(), 3)
})

t.test('retries exhausted: the last refusal as a LossClientError', async t => {
  const s = await stub(t, [{ status: 429, retryAfter: '0' }, { status: 429, retryAfter: '0' }, { status: 429, retryAfter: '0' }])
  const client = new LossClient({ url: s.url, retry: { retries: 1 } })
  const err = await client.ntXent({ inputs }).catch(e => e)
  t.ok(err instanceof LossClientError)
  t.match(err, { status: 429, code: 'overloaded', message: 'scripted 429', path: ['inputs'], retryAfter: 0 })
  t.equal(s.hits(), 2, 'one try and one retry')
})

t.test('retry: false and non-retryable statuses make one attempt', async t => {
  const s = await stub(t, [{ status: 429, retryAfter: '0' }, { status: 400, code: 'invalid_body' }])
  await t.rejects(new LossClient({ url: s.url, retry: false }).ntXent({ inputs }), { status: 429, code: 'overloaded' })
  await t.rejects(new LossClient({ url: s.url }).ntXent({ inputs }), { status: 400, code: 'invalid_body' })
  t.equal(s.hits(), 2)
})

t.test('task steps: not retried when they may update, retried when update is false or asked', async t => {
  const s = await stub(t, [{ status: 429, retryAfter: '0' }, { status: 429, retryAfter: '0' }, { status: 429, retryAfter: '0' }])
  const client = new LossClient({ url: s.url })
  await t.rejects(client.taskLoss('abc', { inputs }), { status: 429, code: 'overloaded' })
  t.equal(s.hits(), 1)
  t.equal((await client.taskLoss('abc', { inputs, options: { update: false } })).loss, 1.25, 'update: false is idempotent')
  t.equal(s.hits(), 4, 'two more 429s, then the answer')
  const s2 = await stub(t, [{ status: 503, code: 'worker_failed', retryAfter: '0' }])
  t.equal((await new LossClient({ url: s2.url }).taskLoss('abc', { inputs }, { retry: true })).loss, 1.25, 'retry: true retries a step')
  t.equal(s2.hits(), 2)
})

t.test('backoff: Retry-After wins but is capped; otherwise jittered exponential, capped', async t => {
  const p = { ...DEFAULT_RETRY, baseMs: 100, maxMs: 1000 }
  t.equal(backoffMs(p, 0, 0.25), 250)
  t.equal(backoffMs(p, 0, 30), 1000, 'Retry-After above maxMs is capped')
  t.equal(backoffMs(p, 0, undefined, () => 1), 100)
  t.equal(backoffMs(p, 3, undefined, () => 1), 800)
  t.equal(backoffMs(p, 10, undefined, () => 1), 1000)
  t.equal(backoffMs(p, 2, undefined, () => 0.5), 200)
  t.equal(parseRetryAfter('5'), 5)
  t.equal(parseRetryAfter(' 0 '), 0)
  t.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6)
  t.equal(parseRetryAfter('soon'), undefined)
  t.equal(parseRetryAfter(null), undefined)
})

t.test('connection refused: status 0, connection_failed', async t => {
  const s = await stub(t, [])
  const dead = s.url.replace(/:\d+$/, ':1')
  await t.rejects(new LossClient({ url: dead, retry: false }).ntXent({ inputs }), { name: 'LossClientError', status: 0, code: 'connection_failed' })
})

t.test('timeoutMs: a server that never answers is connection_failed naming the time, and the socket is released', async t => {
  const sockets = new Set<import('node:net').Socket>()
  const silent = http.createServer(req => { req.resume() }) // reads the body, never answers
  silent.on('connection', s => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => { silent.closeAllConnections(); silent.close(resolve) }))
  const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
  const t0 = Date.now()
  await t.rejects(new LossClient({ url, retry: false, timeoutMs: 200 }).ntXent({ inputs }), { name: 'LossClientError', status: 0, code: 'connection_failed', message: /no answer within 200 ms/ })
  t.ok(Date.now() - t0 >= 190, 'waited for the timeout')
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(sockets.size, 0, 'the timed-out request closed its socket')
})

t.test('bad client arguments are refused before anything is sent', async t => {
  const s = await stub(t, [])
  t.throws(() => new LossClient({ url: 'localhost:8080' }), { code: 'invalid_config' })
  t.throws(() => new LossClient({ url: s.url, form: 'xml' as 'json' }), { code: 'invalid_config' })
  await t.rejects(new LossClient({ url: s.url }).ntXent({ inputs: { out_1: { shape: [2, 2], data: new Float32Array(3) } } }), { code: 'invalid_tensor', path: ['inputs', 'out_1', 'shape'] })
  t.equal(s.hits(), 0)
})
