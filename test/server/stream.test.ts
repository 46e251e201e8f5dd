// GET /v1/stream over a real socket: errors answer their frame and keep the connection,
// frames over maxPayload close it with 1009, a dropped connection cancels its queued work.
import t from 'tap'
import { encode } from '../../src/wire/msgpack.ts'
import type { JobRecord } from '../../src/pool/pool.ts'
import { heavyNtXent, openStream, testServer, until } from '../helpers/server.ts'
import { decode } from '../../src/wire/msgpack.ts'

const small = (): Record<string, unknown> => {
  const t = (s: number): Record<string, unknown> => ({ dtype: 'float32', shape: [4, 8], data: new Uint8Array(Float32Array.from({ length: 32 }, (_, i) => Math.sin(s + i)).buffer) })
  return { inputs: { out_1: t(1), out_2: t(2) } }
}

const { app, url } = await testServer(t, { listen: true, wsMaxPayload: 8 * 1024 * 1024 })

t.test('errors answer their own frame; the connection keeps serving', async t => {
  const s = await openStream(url)
  s.ws.send(Buffer.from([0xc1]))
  s.ws.send(encode({ id: 'k', kind: 'simclr', ...small() }))
  s.ws.send(encode({ id: 'task', task: 'abc', ...small() }))
  s.ws.send(encode({ id: 'nan', kind: 'nt-xent', inputs: { out_1: { dtype: 'float32', shape: [2], data: new Uint8Array(Float32Array.from([1, NaN]).buffer) }, out_2: { dtype: 'float32', shape: [2], data: new Uint8Array(8) } } }))
  const errors = await s.next(4)
  t.same(errors.map(a => a.ok), [false, false, false, false])
  t.same([s.answers.get(null).error.code, s.answers.get('k').error.code, s.answers.get('task').error.code, s.answers.get('nan').error.code], ['invalid_body', 'unknown_kind', 'unknown_task', 'non_finite'])
  t.same(s.answers.get('k').error.path, ['kind'])
  s.ws.send(encode({ id: 1, kind: 'nt-xent', ...small() }))
  const [good] = await s.next(1)
  t.equal(good.id, 1)
  t.equal(good.ok, true)
  t.type(good.result.loss, 'number')
  t.equal(good.result.grads.out_1.dtype, 'float32')
  s.ws.close()
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /ssl_loss_requests_total\{kind="nt-xent",transport="ws",status="200"\} 1/)
  t.match(metrics, /ssl_loss_requests_total\{kind="unknown",transport="ws",status="404"\} 2/, "unknown kind and unknown task")
})

t.test('a frame over maxPayload closes the connection with 1009', async t => {
  const s = await openStream(url)
  s.ws.send(Buffer.alloc(8 * 1024 * 1024 + 1))
  const { code } = await s.closed
  t.equal(code, 1009)
})

t.test('a dropped connection cancels its queued work', async t => {
  const records: JobRecord[] = []
  const onDone = (r: JobRecord): void => { records.push(r) }
  app.pool.on('done', onDone)
  t.teardown(() => { app.pool.off('done', onDone) })
  const s = await openStream(url)
  const heavy = decode(heavyNtXent()) as object
  s.ws.send(encode({ id: 'running', kind: 'nt-xent', ...heavy }))
  await until(() => app.pool.busyWorkers === 1, 'the worker to be busy')
  s.ws.send(encode({ id: 'queued', kind: 'nt-xent', ...small() }))
  await until(() => app.pool.queueDepth === 1, 'the second frame to be queued')
  s.ws.terminate()
  await until(() => app.pool.queueDepth === 0, 'the queue to be empty')
  await until(() => records.length === 2, 'both jobs to end')
  t.same(records.map(r => r.outcome), ['cancelled', 'ok'], 'the queued job was dropped; the running one finished unanswered')
})
