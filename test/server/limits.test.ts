// Every configurable limit, just under (served) and just over (refused with its code):
// body size (msgpack and JSON), elements per tensor, WebSocket payload, HTTP requests in
// flight on one connection (pipelining), open connections; and the flags that set them.
import t from 'tap'
import WebSocket from 'ws'
import { encode, decode } from '../../src/wire/msgpack.ts'
import { loadConfig } from '../../src/config.ts'
import { httpServerOptions } from '../../server/plugins/limits.ts'
import { MSGPACK, answerOf, openStream, testServer, until } from '../helpers/server.ts'
import { connect, parseResponses, postHead } from '../fuzz/raw-http.ts'

const tensor = (shape: number[]): Record<string, unknown> => {
  const n = shape.reduce((a, b) => a * b, 1)
  return { dtype: 'float32', shape, data: new Uint8Array(Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5).buffer) }
}
const ntXent = (b: number, d: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ inputs: { out_1: tensor([b, d]), out_2: tensor([b, d]) }, ...extra })

t.test('body limit: a body of exactly --body-limit bytes is served, one byte more is 413', async t => {
  // msgpack: seed 127 is a one-byte fixint, seed 128 takes two bytes: the same request, one byte longer
  const at = encode(ntXent(2, 4, { options: { seed: 127 } }))
  const over = encode(ntXent(2, 4, { options: { seed: 128 } }))
  t.equal(over.length, at.length + 1)
  const { app } = await testServer(t, { bodyLimit: at.length })
  const post = (payload: Buffer | string, type = 'application/msgpack') => app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: { 'content-type': type }, payload })
  t.equal((await post(at)).statusCode, 200, 'msgpack at the limit')
  const refused = await post(over)
  t.equal(refused.statusCode, 413)
  t.equal(answerOf(refused).error.code, 'too_large')
  t.match(answerOf(refused).error.message, String(at.length))
  // JSON: pad with spaces to the limit exactly
  const json = JSON.stringify({ inputs: { out_1: { dtype: 'float32', shape: [2, 2], data: [1, 2, 3, 4] }, out_2: { dtype: 'float32', shape: [2, 2], data: [4, 3, 2, 1] } } })
  t.ok(json.length < at.length)
  t.equal((await post(json + ' '.repeat(at.length - json.length), 'application/json')).statusCode, 200, 'JSON at the limit')
  const jsonOver = await post(json + ' '.repeat(at.length - json.length + 1), 'application/json')
  t.equal(jsonOver.statusCode, 413)
  t.equal(jsonOver.json().error.code, 'too_large')
})

t.test('elements per tensor: exactly --max-elements is served, one more is 413 naming the tensor', async t => {
  const { app } = await testServer(t, { maxElements: 64 })
  const post = (body: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: encode(body) })
  t.equal((await post(ntXent(8, 8))).statusCode, 200, '64 elements')
  const over = await post({ inputs: { out_1: tensor([5, 13]), out_2: tensor([5, 13]) } })
  t.equal(over.statusCode, 413)
  const e = answerOf(over).error
  t.equal(e.code, 'too_large')
  t.same(e.path?.slice(0, 2), ['inputs', 'out_1'])
  t.match(e.message, /65/)
  // JSON too, and a list of tensors (feature-map-contrastive) is checked tensor by tensor
  const json = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', payload: { inputs: { out_1: { dtype: 'float32', shape: [65], data: new Array(65).fill(0) }, out_2: { dtype: 'float32', shape: [65], data: new Array(65).fill(0) } } } })
  t.equal(json.statusCode, 413)
  const map = (c: number): Record<string, unknown> => tensor([2, c, 4, 4])
  const fmct = (c: number) => app.inject({ method: 'POST', url: '/v1/loss/feature-map-contrastive', headers: MSGPACK, payload: encode({ inputs: { anchor: [map(2), map(c)], positive: [map(2), map(c)] } }) })
  t.equal((await fmct(2)).statusCode, 200, '2x2x4x4 = 64 elements per map')
  const fmOver = await fmct(3)
  t.equal(fmOver.statusCode, 413)
  t.same(answerOf(fmOver).error.path?.slice(0, 3), ['inputs', 'anchor', 1])
})

t.test('WebSocket payload: a frame of exactly --ws-max-payload bytes is answered, one more closes 1009', async t => {
  const frame = (id: string): Buffer => encode({ id, kind: 'nt-xent', ...ntXent(2, 4) })
  const size = frame('a').length
  const { url } = await testServer(t, { listen: true, wsMaxPayload: size })
  const s = await openStream(url)
  s.ws.send(frame('a'))
  const [answer] = await s.next(1)
  t.equal(answer.id, 'a')
  t.equal(answer.ok, true, 'at the limit')
  s.ws.send(frame('bb'))
  t.equal((await s.closed).code, 1009, 'one byte over')
})

t.test('HTTP pipelining: --max-in-flight-per-connection requests are served, the next is 429', async t => {
  const { url } = await testServer(t, { listen: true, maxInFlightPerConnection: 2 })
  const body = encode(ntXent(2, 4))
  const request = Buffer.concat([Buffer.from(postHead('/v1/loss/nt-xent', body.length)), body])
  for (const [n, expected] of [[2, [200, 200]], [3, [200, 200, 429]]] as const) {
    const c = await connect(url)
    await c.write(Buffer.concat(new Array(n).fill(request)))
    await until(() => parseResponses(c.received()).length === n, `${n} answers`)
    const answers = parseResponses(c.received())
    t.same(answers.map(a => a.status), expected, `${n} pipelined`)
    if (n === 3) {
      const e = (decode(answers[2].body) as any).error
      t.equal(e.code, 'overloaded')
      t.match(e.message, /over the limit of 2/)
      t.equal(answers[2].headers['retry-after'], '1')
    }
    c.socket.destroy()
  }
})

t.test('connections: --max-connections are served, one more is dropped at accept; WebSockets count', async t => {
  const { app, url } = await testServer(t, { listen: true, maxConnections: 3 })
  const live = async (c: Awaited<ReturnType<typeof connect>>): Promise<number> => {
    const before = parseResponses(c.received()).length
    await c.write('GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await until(() => parseResponses(c.received()).length > before || c.socket.destroyed, 'an answer')
    return parseResponses(c.received())[before]?.status ?? 0
  }
  const a = await connect(url)
  const b = await connect(url)
  const ws = await openStream(url)
  t.same([await live(a), await live(b)], [200, 200], 'two HTTP connections and one WebSocket: at the limit')
  const d = await connect(url)
  const { bytes } = await d.ended
  t.equal(bytes.length, 0, 'the fourth connection is closed without a byte')
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, /ssl_loss_connections_dropped_total 1/)
  t.match(metrics, /ssl_loss_open_connections 3/)
  ws.ws.close()
  await ws.closed
  const open = (): Promise<number> => new Promise(resolve => app.server.getConnections((_e, n) => resolve(n)))
  while (await open() > 2) await new Promise(resolve => setTimeout(resolve, 10))
  const e = await connect(url)
  t.equal(await live(e), 200, 'a slot freed: a new connection is served')
  for (const c of [a, b, e]) c.socket.destroy()
})

t.test('flags: defaults, seconds, and the timeouts Node gets', async t => {
  const d = loadConfig([], {})
  t.same([d.maxConnections, d.headerTimeoutMs, d.bodyTimeoutMs, d.keepAliveTimeoutMs, d.corsOrigin], [1024, 30_000, 300_000, 72_000, ''])
  const c = loadConfig(['--max-connections', '10', '--header-timeout', '2.5', '--body-timeout', '60'], { KEEP_ALIVE_TIMEOUT: '5' })
  t.same([c.maxConnections, c.headerTimeoutMs, c.bodyTimeoutMs, c.keepAliveTimeoutMs], [10, 2500, 60_000, 5000])
  t.throws(() => loadConfig(['--max-connections', '0'], {}), { message: /--max-connections/ })
  t.throws(() => loadConfig(['--header-timeout', 'soon'], {}), { message: /--header-timeout.*soon/ })
  const o = httpServerOptions(c)
  t.same(o.http, { headersTimeout: 2500, requestTimeout: 60_000, connectionsCheckingInterval: 625 })
  t.equal(o.requestTimeout, 60_000)
  t.equal(o.keepAliveTimeout, 5000)
  // Node refuses headersTimeout > requestTimeout: the header timeout is capped by the body's
  t.equal((httpServerOptions({ headerTimeoutMs: 10_000, bodyTimeoutMs: 4000, keepAliveTimeoutMs: 1 }).http as { headersTimeout: number }).headersTimeout, 4000)
})

t.test('refused WebSocket upgrades release their sockets (and close() completes)', async t => {
  const { app, url } = await testServer(t, { listen: true, apiKeys: ['key-AAAA-0123456789abcdef'] })
  for (let i = 0; i < 5; i++) {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/stream', { headers: { authorization: 'Bearer key-BBBB-wrong-wrong-wrong' } })
    const status = await new Promise<number>(resolve => { ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)); ws.once('open', () => resolve(101)) })
    t.equal(status, 401)
  }
  const open = (): Promise<number> => new Promise(resolve => app.server.getConnections((_e, n) => resolve(n)))
  for (let i = 0; i < 500 && await open() > 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(await open(), 0, 'no socket left behind')
})

t.test('the WebSocket route itself is unaffected by the HTTP in-flight cap', async t => {
  const { url } = await testServer(t, { listen: true, maxInFlightPerConnection: 1 })
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/stream')
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  t.equal(ws.readyState, WebSocket.OPEN)
  ws.close()
})
