// Graceful SIGTERM of the real entry (npm start's server/start.ts): new requests are refused
// (503 not_ready, or the port no longer accepts), in-flight HTTP and WebSocket work is
// answered, the stream closes 1001, and the process exits 0.
import t from 'tap'
import { encode, decode } from '../../src/wire/msgpack.ts'
import { heavyNtXent, openStream, startRealServer, until } from '../helpers/server.ts'

t.test('SIGTERM drains and exits 0', async t => {
  const { child, url, log, exited } = await startRealServer(t, [])
  t.match(log(), /"configuration"/, 'the config is printed at start')

  const s = await openStream(url)
  // heavy enough (about 6 GFLOP, most of a second on one wasm thread) that the running and the
  // waiting evaluation can be observed before SIGTERM
  const body = heavyNtXent(512, 1024)
  const heavy = decode(body) as object
  s.ws.send(encode({ id: 'in-flight', kind: 'nt-xent', ...heavy }))
  const httpInFlight = fetch(`${url}/v1/loss/nt-xent`, { method: 'POST', headers: { 'content-type': 'application/msgpack' }, body: new Uint8Array(body) })
  const gauge = async (name: string): Promise<number> => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(await (await fetch(`${url}/metrics`)).text())?.[1])
  let busy = 0
  let queued = 0
  const end = Date.now() + 60_000
  while ((busy !== 1 || queued !== 1) && Date.now() < end) {
    busy = await gauge('ssl_loss_busy_workers')
    queued = await gauge('ssl_loss_queue_depth')
  }
  t.same([busy, queued], [1, 1], 'one evaluation running, one waiting')

  child.kill('SIGTERM')
  await until(() => /SIGTERM: draining/.test(log()), 'the drain to begin')
  const late = await fetch(`${url}/v1/loss/nt-xent`, { method: 'POST', headers: { 'content-type': 'application/msgpack' }, body: new Uint8Array(heavyNtXent(4, 4)) })
    .then(async r => ({ status: r.status, code: (decode(Buffer.from(await r.arrayBuffer())) as any).error?.code }), (err: Error) => ({ status: 0, code: (err.cause as { code?: string })?.code ?? err.message }))
  t.ok((late.status === 503 && late.code === 'not_ready') || late.code === 'ECONNREFUSED', `a new request is refused: ${JSON.stringify(late)}`)

  const [answer] = await s.next(1)
  t.equal(answer.id, 'in-flight')
  t.equal(answer.ok, true, 'the in-flight frame is answered')
  t.equal((await s.closed).code, 1001, 'then the stream closes: going away')
  const res = await httpInFlight
  t.equal(res.status, 200, 'the in-flight HTTP request is answered')
  t.equal(await exited, 0, 'exit 0')
  t.match(log(), /"stopped"/)
})
