// The msgpack body read into one pre-sized buffer (readBody), and large msgpack answers
// written as parts (header pieces + views of the gradients) with an exact Content-Length.
import t from 'tap'
import { PassThrough } from 'node:stream'
import { readBody } from '../../server/plugins/wire-body.ts'
import { LossServerError } from '../../src/errors.ts'
import { decode, encode } from '../../src/wire/msgpack.ts'
import { MSGPACK, testServer } from '../helpers/server.ts'

function read (chunks: Array<Buffer | Error>, contentLength: string | undefined, limit = 1000): Promise<{ err: Error | null, body?: Buffer }> {
  const s = new PassThrough()
  const p = new Promise<{ err: Error | null, body?: Buffer }>(resolve => readBody(s, contentLength, limit, (err, body) => resolve({ err, ...(body ? { body } : {}) })))
  for (const c of chunks) {
    if (c instanceof Error) { s.destroy(c); return p }
    s.write(c)
  }
  s.end()
  return p
}

const code = (err: Error | null): string | undefined => err instanceof LossServerError ? err.code : err ? `status ${(err as { statusCode?: number }).statusCode}` : undefined

t.test('readBody: chunks land in one buffer of its own, sized by Content-Length', async t => {
  const r = await read([Buffer.from('abc'), Buffer.from('defg')], '7')
  t.equal(r.err, null)
  t.equal(r.body!.toString(), 'abcdefg')
  t.equal(r.body!.byteOffset, 0)
  t.equal(r.body!.buffer.byteLength, 7, 'the whole ArrayBuffer is the body (it may move to a worker)')
  const chunked = await read([Buffer.from('ab'), Buffer.from('c')], undefined)
  t.equal(chunked.body!.toString(), 'abc', 'no Content-Length: joined once')
  t.equal(chunked.body!.buffer.byteLength, 3)
  t.equal((await read([], '0')).body!.byteLength, 0, 'an empty body')
})

t.test('readBody: the limit and the declared length', async t => {
  const over = await read([Buffer.alloc(10)], '1001')
  t.equal(code(over.err), 'too_large', 'a declared length over the limit is refused before reading')
  t.match(over.err!.message, /1000/)
  t.equal(code((await read([Buffer.alloc(600), Buffer.alloc(600)], undefined)).err), 'too_large', 'chunked bodies are counted as they come')
  const short = await read([Buffer.alloc(5)], '9')
  t.equal(code(short.err), 'invalid_body')
  t.match(short.err!.message, /after 5 bytes.*9/)
  t.equal(code((await read([Buffer.alloc(5), Buffer.alloc(5)], '9')).err), 'invalid_body', 'more than declared')
  t.equal(code((await read([Buffer.alloc(2), new Error('aborted')], '9')).err), 'status 400', 'a stream error is a 400')
})

t.test('a large msgpack answer: exact Content-Length, gradients 4-byte aligned in the body', async t => {
  const { url } = await testServer(t, { listen: true })
  const b = 64
  const d = 128
  const rows = (s: number): Uint8Array => new Uint8Array(Float32Array.from({ length: b * d }, (_, i) => Math.sin(i * s) * 0.1).buffer)
  const inputs = { out_1: { dtype: 'float32', shape: [b, d], data: rows(1) }, out_2: { dtype: 'float32', shape: [b, d], data: rows(2) } }
  const res = await fetch(`${url}/v1/loss/nt-xent`, { method: 'POST', headers: MSGPACK, body: encode({ inputs }) as BodyInit })
  t.equal(res.status, 200)
  t.notOk(res.headers.get('transfer-encoding'), 'not chunked')
  const body = new Uint8Array(await res.arrayBuffer())
  t.equal(Number(res.headers.get('content-length')), body.byteLength)
  const answer = decode(body) as any
  for (const name of ['out_1', 'out_2']) {
    const g = answer.grads[name].data as Uint8Array
    t.equal(g.byteLength, b * d * 4)
    t.equal(g.byteOffset % 4, 0, `${name} at offset ${g.byteOffset}`)
  }
  // the same evaluation answered in JSON has the same numbers
  const json = await (await fetch(`${url}/v1/loss/nt-xent`, { method: 'POST', headers: { ...MSGPACK, accept: 'application/json' }, body: encode({ inputs }) as BodyInit })).json() as any
  const g = answer.grads.out_1.data as Uint8Array
  t.same(Array.from(new Float32Array(g.buffer, g.byteOffset, b * d)), json.grads.out_1.data)
  t.equal(answer.loss, json.loss)
})
