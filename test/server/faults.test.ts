// Faults the service must survive (issue 6/6 "Faults"), through the real app on a real port:
// a worker that hangs (timeout, replaced), clients that go away mid-upload and mid-answer,
// slowloris clients (headers, body, or nothing at all), and a computation that outlasts the
// body timeout (still answered: the clock stops when the body has arrived). A worker killed
// mid-request is in load-and-failures.test.ts; here it is killed over and over.
import t, { type Test } from 'tap'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { makeConfig } from '../../src/config.ts'
import { buildServer } from '../../server/app.ts'
import { WorkerPool, type JobRecord } from '../../src/pool/pool.ts'
import { encode } from '../../src/wire/msgpack.ts'
import { MSGPACK, answerOf, heavyNtXent, testServer, until } from '../helpers/server.ts'
import { connect, parseResponses, postHead } from '../fuzz/raw-http.ts'

const here = path.dirname(fileURLToPath(import.meta.url))
const HANG_SEED = 0xDEAD // test/server/faults-hang-hook.mjs

const small = (extra: Record<string, unknown> = {}): Buffer => {
  const t = (s: number): Record<string, unknown> => ({ dtype: 'float32', shape: [4, 8], data: new Uint8Array(Float32Array.from({ length: 32 }, (_, i) => Math.sin(s + i)).buffer) })
  return encode({ inputs: { out_1: t(1), out_2: t(2) }, ...extra })
}

/** Records the pool's finished jobs for the length of a test. */
function jobLog (t: Test, pool: WorkerPool): JobRecord[] {
  const records: JobRecord[] = []
  const onDone = (r: JobRecord): void => { records.push(r) }
  pool.on('done', onDone)
  t.teardown(() => { pool.off('done', onDone) })
  return records
}

t.test('a worker that hangs: 503 timeout, the worker is replaced, the next requests are fine', async t => {
  // a child-process worker (as tensorflow-gpu runs) with a test-only preload that makes one
  // marked job spin forever; production pools never load it
  const hook = pathToFileURL(path.join(here, 'faults-hang-hook.mjs')).href
  const env = { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${hook}`.trim() }
  const pool = new WorkerPool({ placement: { backend: 'wasm', transport: 'process', workers: 1, envOf: () => env }, queueSize: 4, timeoutMs: 1500 })
  const app = await buildServer(makeConfig({ backend: 'wasm', workers: 1, logLevel: 'silent', requestTimeoutMs: 1500 }), { pool })
  t.teardown(() => app.close())
  await pool.ready()
  const post = (payload: Buffer) => app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload })

  const before = await post(small())
  t.equal(before.statusCode, 200, 'the hook leaves ordinary jobs alone')
  const restarts: number[] = []
  pool.on('restart', (i: number) => restarts.push(i))

  const res = await post(small({ options: { seed: HANG_SEED } }))
  t.equal(res.statusCode, 503)
  t.equal(answerOf(res).error.code, 'timeout')
  t.ok(res.headers['retry-after'], 'retryable')
  await until(() => restarts.length > 0, 'the hung worker to be replaced')
  t.same(restarts, [0], 'the hung worker was killed and replaced')
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 503, 'not ready while the replacement warms up')
  await until(() => pool.isReady(), 'the pool to be ready again')
  for (let i = 0; i < 3; i++) t.equal((await post(small())).statusCode, 200)
  t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
})

t.test('faults over a real socket', async t => {
  const { app, url } = await testServer(t, { listen: true, headerTimeoutMs: 400, bodyTimeoutMs: 1200, keepAliveTimeoutMs: 400 })
  const pool = app.pool
  const post = (payload: Buffer) => app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload })
  t.equal((await post(small())).statusCode, 200)
  const baseline = pool.workers()[0].liveTensors

  t.test('a client that disconnects mid-upload: nothing is computed, the server serves on', async t => {
    const jobs = jobLog(t, pool)
    const body = heavyNtXent()
    const c = await connect(url)
    await c.write(postHead('/v1/loss/nt-xent', body.length))
    await c.write(body.subarray(0, body.length >> 1))
    c.socket.destroy()
    await c.ended
    t.equal((await post(small())).statusCode, 200)
    t.same(jobs.map(j => j.outcome), ['ok'], 'only the next request reached a worker')
    t.equal(pool.workers()[0].liveTensors, baseline)
  })

  t.test('a client that disconnects mid-answer: the answer is dropped, the server serves on', async t => {
    const jobs = jobLog(t, pool)
    const body = heavyNtXent() // its answer carries 2 x 2 MiB of gradients
    const c = await connect(url)
    c.socket.setNoDelay(true)
    await c.write(postHead('/v1/loss/nt-xent', body.length, 'application/msgpack', 'Accept: application/json\r\n'))
    await c.write(body)
    // the JSON answer is several MB: go away after its first bytes
    c.socket.pause()
    await until(() => jobs.length === 1, 'the evaluation to finish')
    c.socket.resume()
    await until(() => c.received().length > 0, 'the first bytes of the answer')
    c.socket.destroy()
    t.equal(jobs[0].outcome, 'ok')
    t.equal((await post(small())).statusCode, 200)
    t.equal(pool.workers()[0].liveTensors, baseline)
  })

  t.test('a client that disconnects while its request waits in the queue: the job is dropped', async t => {
    const jobs = jobLog(t, pool)
    const running = post(heavyNtXent())
    await until(() => pool.busyWorkers === 1, 'the worker to be busy')
    const body = small()
    const c = await connect(url)
    await c.write(Buffer.concat([Buffer.from(postHead('/v1/loss/nt-xent', body.length)), body]))
    await until(() => pool.queueDepth === 1, 'the request to be queued')
    c.socket.destroy()
    await until(() => pool.queueDepth === 0, 'the queue to be empty')
    t.equal((await running).statusCode, 200)
    await until(() => jobs.length === 2, 'both jobs to end')
    t.same(jobs.map(j => j.outcome).sort(), ['cancelled', 'ok'])
  })

  t.test('slowloris: headers dripping in are cut at --header-timeout with 408 and the API error body', async t => {
    const c = await connect(url)
    await c.write('POST /v1/loss/nt-xent HTTP/1.1\r\nHost: 127.0.0.1\r\n')
    const drip = setInterval(() => { if (c.socket.writable) c.socket.write('X-Slow: 1\r\n') }, 50)
    const { bytes } = await c.ended
    clearInterval(drip)
    const [res] = parseResponses(bytes)
    t.equal(res?.status, 408, bytes.toString('latin1').slice(0, 200))
    t.equal(JSON.parse(res.body.toString()).error.code, 'request_timeout')
    t.equal(res.headers.connection, 'close')
  })

  t.test('slowloris: a body dripping in is cut at --body-timeout with 408', async t => {
    const jobs = jobLog(t, pool)
    const body = small()
    const c = await connect(url)
    await c.write(postHead('/v1/loss/nt-xent', body.length))
    let sent = 0
    const drip = setInterval(() => { if (c.socket.writable && sent < body.length - 1) c.socket.write(body.subarray(sent, ++sent)) }, 20)
    const { bytes } = await c.ended
    clearInterval(drip)
    const [res] = parseResponses(bytes)
    t.equal(res?.status, 408, bytes.toString('latin1').slice(0, 200))
    t.equal(JSON.parse(res.body.toString()).error.code, 'request_timeout')
    t.ok(sent < body.length, 'the body never completed')
    t.same(jobs, [], 'nothing reached a worker')
  })

  t.test('a connection that never sends a byte is closed at --header-timeout', async t => {
    const c = await connect(url)
    const { bytes } = await c.ended
    const [res] = parseResponses(bytes)
    t.equal(res?.status, 408)
    t.equal(JSON.parse(res.body.toString()).error.code, 'request_timeout')
  })

  t.test('a keep-alive connection idle after its answer is closed at --keep-alive-timeout', async t => {
    const body = small()
    const c = await connect(url)
    await c.write(Buffer.concat([Buffer.from(postHead('/v1/loss/nt-xent', body.length)), body]))
    const { bytes, error } = await c.ended
    t.equal(error, undefined)
    const answers = parseResponses(bytes)
    t.same(answers.map(a => a.status), [200], 'one answer, then the server closed the idle connection')
  })

  t.test('a computation longer than --body-timeout is answered (the clock stops when the body is in)', async t => {
    const body = heavyNtXent()
    const c = await connect(url)
    await c.write(postHead('/v1/loss/nt-xent', body.length))
    await c.write(body)
    await until(() => parseResponses(c.received()).length === 1 && parseResponses(c.received())[0].body.length === Number(parseResponses(c.received())[0].headers['content-length']), 'the answer', 120_000)
    t.equal(parseResponses(c.received())[0].status, 200)
    c.socket.destroy()
  })

  t.test('a worker killed mid-request three times in a row: 503 each time, then served again', async t => {
    for (let i = 0; i < 3; i++) {
      await until(() => pool.isReady(), 'a warm worker')
      const inFlight = post(heavyNtXent())
      await until(() => pool.busyWorkers === 1, 'the worker to be busy')
      pool.terminateWorker(0)
      const res = await inFlight
      t.equal(res.statusCode, 503)
      t.equal(answerOf(res).error.code, 'worker_failed')
    }
    t.equal((await post(small())).statusCode, 200)
    await until(() => pool.isReady(), 'a warm worker')
    t.equal((await app.inject({ url: '/health/ready' })).statusCode, 200)
    t.equal(pool.workers()[0].liveTensors, baseline, 'a fresh worker after warm-up holds what the first did')
  })
})
