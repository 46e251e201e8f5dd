// The service under load and failure, through the real app: 429 with Retry-After when the
// queue is full, 503 worker_failed and recovery when a worker dies mid-request, 503 timeout,
// no growth of live tensors over 200 requests, metrics that move, health and docs.
import t from 'tap'
import { encode } from '../../src/wire/msgpack.ts'
import { MSGPACK, answerOf, heavyNtXent, testServer, until } from '../helpers/server.ts'

const small = (): Buffer => {
  const t = (s: number): Record<string, unknown> => ({ dtype: 'float32', shape: [4, 8], data: new Uint8Array(Float32Array.from({ length: 32 }, (_, i) => Math.sin(s + i)).buffer) })
  return encode({ inputs: { out_1: t(1), out_2: t(2) } })
}

t.test('a full queue answers 429 overloaded with Retry-After; queued work still completes', async t => {
  const { app } = await testServer(t, { queueSize: 1 })
  const post = (payload: Buffer) => app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload })
  const running = post(heavyNtXent())
  await until(() => app.pool.busyWorkers === 1, 'the worker to be busy')
  const queued = post(small())
  await until(() => app.pool.queueDepth === 1, 'one queued request')
  const refused = await post(small())
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['retry-after'], '1')
  t.equal(answerOf(refused).error.code, 'overloaded')
  t.match(answerOf(refused).error.message, /queue size 1/)
  t.equal((await running).statusCode, 200)
  t.equal((await queued).statusCode, 200)
})

t.test('a worker killed mid-request: 503 worker_failed, then it is replaced and serves again', async t => {
  const { app } = await testServer(t, {})
  const inFlight = app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: heavyNtXent() })
  await until(() => app.pool.busyWorkers === 1, 'the worker to be busy')
  app.pool.terminateWorker(0)
  const res = await inFlight
  t.equal(res.statusCode, 503)
  t.equal(answerOf(res).error.code, 'worker_failed')
  t.ok(res.headers['retry-after'], 'retryable: Retry-After')
  // the replacement warms up; meanwhile requests wait in the queue instead of failing
  const after = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: small() })
  t.equal(after.statusCode, 200, JSON.stringify(answerOf(after)))
  await until(() => app.pool.isReady(), 'the pool to be ready again')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /ssl_loss_worker_restarts_total 1/)
})

t.test('over the request timeout: 503 timeout, the work is abandoned, the server keeps serving', async t => {
  const { app } = await testServer(t, { requestTimeoutMs: 300 })
  // about 25 GFLOP: seconds on one wasm thread, far over the 300 ms limit however fast the kernels get
  const res = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: heavyNtXent(1024, 1024) })
  t.equal(res.statusCode, 503)
  t.equal(answerOf(res).error.code, 'timeout')
  t.equal(res.headers['retry-after'], '5')
  await until(() => app.pool.isReady(), 'a fresh worker')
  t.equal((await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: small() })).statusCode, 200)
})

t.test('live tensors do not grow over 200 requests, and the metrics move', async t => {
  const { app } = await testServer(t, {})
  const before = (await app.inject({ url: '/metrics' })).body
  t.match(before, /ssl_loss_queue_depth 0/)
  const first = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: small() })
  t.equal(first.statusCode, 200)
  const baseline = app.pool.workers()[0].liveTensors
  const fmctMap = { dtype: 'float32', shape: [2, 3, 2, 2], data: new Uint8Array(Float32Array.from({ length: 24 }, (_, i) => Math.cos(i)).buffer) }
  const fmct = encode({ inputs: { anchor: [fmctMap, fmctMap], positive: [fmctMap, fmctMap] } })
  for (let i = 0; i < 199; i++) {
    const res = i % 2
      ? await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: small() })
      : await app.inject({ method: 'POST', url: '/v1/loss/feature-map-contrastive', headers: MSGPACK, payload: fmct })
    if (res.statusCode !== 200) t.fail(`request ${i}: ${res.statusCode} ${res.body}`)
  }
  t.equal(app.pool.workers()[0].liveTensors, baseline, `live tensors stay at ${baseline}`)
  await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: Buffer.from([0xc1]) })
  const after = (await app.inject({ url: '/metrics' })).body
  t.match(after, /ssl_loss_requests_total\{kind="nt-xent",transport="http",status="200"\} 100/)
  t.match(after, /ssl_loss_requests_total\{kind="feature-map-contrastive",transport="http",status="200"\} 100/)
  t.match(after, /ssl_loss_requests_total\{kind="nt-xent",transport="http",status="400"\} 1/)
  t.match(after, /ssl_loss_compute_seconds_count\{kind="nt-xent"\} 100/)
  t.match(after, /ssl_loss_queue_seconds_count\{kind="feature-map-contrastive"\} 100/)
  t.match(after, /ssl_loss_request_seconds_count\{kind="nt-xent",transport="http"\} 101/)
  t.match(after, new RegExp(`ssl_loss_worker_live_tensors\\{worker="0"\\} ${baseline}`))
  t.match(after, /ssl_loss_bytes_total\{direction="in",transport="http"\} \d{5,}/)
  t.match(after, /ssl_loss_bytes_total\{direction="out",transport="http"\} \d{5,}/)
  t.match(after, /ssl_loss_busy_workers 0/)
})

t.test('health, docs', async t => {
  const { app } = await testServer(t, {})
  t.same((await app.inject({ url: '/health/live' })).json(), { status: 'live' })
  const ready = (await app.inject({ url: '/health/ready' })).json()
  t.equal(ready.status, 'ready')
  t.equal(ready.backend, 'wasm')
  const page = await app.inject({ url: '/docs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  const doc = (await app.inject({ url: '/docs/openapi.json' })).json()
  t.equal(doc.openapi, '3.1.0')
  for (const kind of ['feature-map-contrastive', 'cpc', 'amdim-nce', 'nt-xent']) t.ok(doc.paths[`/v1/loss/${kind}`]?.post, `documents ${kind}`)
  const ntx = doc.paths['/v1/loss/nt-xent'].post.requestBody.content['application/json'].schema
  t.equal(ntx.properties.config.properties.temperature.default, 0.5, 'kind config defaults come from the kind schemas')
})
