// The client's transport copies: a large msgpack request goes out as parts (tensor bytes are
// views of the caller's arrays) with an exact Content-Length and aligned tensor data, again
// on a retry; a large answer is read into one buffer and its float32 gradients are views.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { decode } from '../../src/wire/msgpack.ts'
import { LossClient } from '../../src/client/index.ts'
import { testServer } from '../helpers/server.ts'

const b = 64
const d = 128
const rows = (s: number): Float32Array => Float32Array.from({ length: b * d }, (_, i) => Math.sin(i * s) * 0.1)
const inputs = { out_1: { shape: [b, d], data: rows(1) }, out_2: { shape: [b, d], data: rows(2) } }

t.test('a large request: streamed parts, exact Content-Length, aligned data, the same bytes on a retry', async t => {
  const seen: Array<{ headers: http.IncomingHttpHeaders, body: Buffer }> = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', c => chunks.push(c))
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks) })
      if (seen.length === 1) {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' })
        res.end(JSON.stringify({ error: { code: 'overloaded', message: 'busy' } }))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ loss: 2, terms: {}, meta: { backend: 'stub', worker: 0, queue_ms: 0, compute_ms: 0 } }))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise(resolve => server.close(resolve)))
  const client = new LossClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })
  t.equal((await client.ntXent({ inputs })).loss, 2)
  t.equal(seen.length, 2)
  for (const [i, s] of seen.entries()) {
    t.equal(Number(s.headers['content-length']), s.body.byteLength, `attempt ${i + 1}: Content-Length is exact`)
    t.notOk(s.headers['transfer-encoding'], `attempt ${i + 1}: not chunked`)
    const aligned = new Uint8Array(new ArrayBuffer(s.body.byteLength))
    aligned.set(s.body)
    const body = decode(aligned) as any
    for (const name of ['out_1', 'out_2'] as const) {
      const data = body.inputs[name].data as Uint8Array
      t.equal(data.byteOffset % 4, 0, `attempt ${i + 1}: ${name} data at offset ${data.byteOffset}`)
      t.same(new Float32Array(data.buffer, data.byteOffset, b * d), inputs[name].data)
    }
  }
  t.same(seen[0].body, seen[1].body, 'the retry sent the same bytes')
})

t.test('a large answer from the real app: float32 gradients are views of the answer body', async t => {
  const { url } = await testServer(t, { listen: true })
  const msgpack = await new LossClient({ url }).ntXent({ inputs })
  const json = await new LossClient({ url, form: 'json' }).ntXent({ inputs })
  for (const name of ['out_1', 'out_2']) {
    const g = msgpack.grads![name] as { data: Float32Array }
    t.ok(g.data.buffer.byteLength > g.data.byteLength, `${name}: a view into the body, not a copy of its own`)
    t.same(Array.from(g.data), Array.from((json.grads![name] as { data: Float32Array }).data), `${name}: same numbers as JSON`)
  }
  t.equal(msgpack.loss, json.loss)
})
