// Every class of bad input gets the API.md error body: the right status and code, a message
// that names the offending values, and a path into the request. Never a 5xx.
import t, { type Test } from 'tap'
import { encode } from '../../src/wire/msgpack.ts'
import { MSGPACK, answerOf, testServer } from '../helpers/server.ts'

const { app } = await testServer(t, { bodyLimit: 64 * 1024 })

const f32 = (values: number[]): Uint8Array => new Uint8Array(Float32Array.from(values).buffer)
const tensor = (shape: number[], values: number[]): Record<string, unknown> => ({ dtype: 'float32', shape, data: f32(values) })
const ntXent = (out1: unknown = tensor([2, 2], [1, 2, 3, 4]), out2: unknown = tensor([2, 2], [4, 3, 2, 1])): Record<string, unknown> => ({ inputs: { out_1: out1, out_2: out2 } })

async function post (payload: Buffer | string, headers: Record<string, string> = MSGPACK, kind = 'nt-xent') {
  const res = await app.inject({ method: 'POST', url: `/v1/loss/${kind}`, headers, payload })
  return { status: res.statusCode, headers: res.headers, body: answerOf(res) }
}

async function expectError (tt: Test, res: { status: number, body: any }, status: number, code: string, path?: unknown[], mention?: RegExp): Promise<void> {
  tt.equal(res.status, status, `status (${JSON.stringify(res.body)})`)
  tt.equal(res.body.error?.code, code)
  tt.type(res.body.error?.message, 'string')
  if (path) tt.same(res.body.error?.path, path)
  if (mention) tt.match(res.body.error?.message, mention)
}

t.test('a good request answers 200 (the baseline the rest break)', async t => {
  const res = await post(encode(ntXent()))
  t.equal(res.status, 200)
  t.type(res.body.loss, 'number')
})

t.test('malformed msgpack: 400 invalid_body', async t => {
  await expectError(t, await post(Buffer.from([0xc1])), 400, 'invalid_body', undefined, /msgpack/)
  await expectError(t, await post(Buffer.from([0x82, 0xa6])), 400, 'invalid_body', undefined, /truncated/)
})

t.test('truncated body (fewer bytes than Content-Length): 400 invalid_body', async t => {
  const whole = encode(ntXent())
  const res = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: { ...MSGPACK, 'content-length': String(whole.length + 10) }, payload: whole })
  t.equal(res.statusCode, 400)
  t.equal(answerOf(res).error.code, 'invalid_body')
  // a msgpack body cut in the middle of a tensor
  await expectError(t, await post(whole.subarray(0, whole.length - 5)), 400, 'invalid_body', undefined, /truncated/)
})

t.test('wrong byte length: 400 invalid_tensor naming both sizes', async t => {
  const bad = { dtype: 'float32', shape: [2, 2], data: new Uint8Array(15) }
  await expectError(t, await post(encode(ntXent(bad))), 400, 'invalid_tensor', ['inputs', 'out_1', 'data'], /15 bytes.*16/)
})

t.test('unknown dtype: 400 invalid_tensor', async t => {
  const bad = { dtype: 'int8', shape: [2, 2], data: new Uint8Array(4) }
  await expectError(t, await post(encode(ntXent(undefined, bad))), 400, 'invalid_tensor', ['inputs', 'out_2', 'dtype'], /int8/)
})

t.test('a shape claiming 10^12 elements with 16 bytes is refused before allocating', async t => {
  // a shape that disagrees with its data is 400 invalid_tensor whatever it claims (decided from
  // lengths, before any allocation); 413 too_large is for tensors that really are over the limit
  const bad = { dtype: 'float32', shape: [1_000_000, 1_000_000], data: new Uint8Array(16) }
  await expectError(t, await post(encode(ntXent(bad))), 400, 'invalid_tensor', ['inputs', 'out_1', 'data'], /needs 4000000000000/)
})

t.test('NaN and Infinity: 400 non_finite with the tensor and the first bad index', async t => {
  await expectError(t, await post(encode(ntXent(tensor([2, 2], [1, 2, NaN, 4])))), 400, 'non_finite', ['inputs', 'out_1', 'data', 2], /NaN at flat index 2/)
  await expectError(t, await post(encode(ntXent(undefined, tensor([2, 2], [1, -Infinity, 3, Infinity])))), 400, 'non_finite', ['inputs', 'out_2', 'data', 1], /-Infinity/)
})

t.test('missing fields: 400 with the path of what is missing', async t => {
  await expectError(t, await post(encode({ config: {} })), 400, 'invalid_body', ['inputs'])
  await expectError(t, await post(encode({ inputs: { out_1: tensor([2, 2], [1, 2, 3, 4]) } })), 400, 'invalid_body', ['inputs', 'out_2'], /out_2/)
  await expectError(t, await post(encode(ntXent({ dtype: 'float32', data: f32([1, 2, 3, 4]) }))), 400, 'invalid_tensor', ['inputs', 'out_1', 'shape'])
  await expectError(t, await post(encode({ ...ntXent(), surprise: 1 })), 400, 'invalid_body', undefined, /surprise/)
  await expectError(t, await post(JSON.stringify({ inputs: { out_1: { dtype: 'float32', shape: [2, 2], data: [1, 2, 3] } } }), { 'content-type': 'application/json' }), 400, 'invalid_tensor', ['inputs', 'out_1', 'data'])
})

t.test('wrong kinds: 404 unknown_kind naming the kinds there are', async t => {
  await expectError(t, await post(encode(ntXent()), MSGPACK, 'simclr'), 404, 'unknown_kind', ['kind'], /simclr.*nt-xent/)
  // inputs of another kind
  await expectError(t, await post(encode(ntXent()), MSGPACK, 'amdim-nce'), 400, 'invalid_body', ['inputs', 'anchor'])
})

t.test('bad comparisons: 400 invalid_config', async t => {
  const map = tensor([2, 3, 2, 2], Array.from({ length: 24 }, (_, i) => Math.sin(i)))
  const body = (comparisons: string): Buffer => encode({ config: { comparisons }, inputs: { anchor: [map, map], positive: [map, map] } })
  await expectError(t, await post(body('0x, 11'), MSGPACK, 'feature-map-contrastive'), 400, 'invalid_config', ['config', 'comparisons'], /0x/)
  const outOfRange = await post(body('05'), MSGPACK, 'feature-map-contrastive')
  t.equal(outOfRange.status, 400, JSON.stringify(outOfRange.body))
  t.match(outOfRange.body.error.message, /5/)
  await expectError(t, await post(encode({ config: { temperature: -1 }, ...ntXent() })), 400, 'invalid_config', ['config', 'temperature'])
})

t.test('JSON syntax errors and prototype keys: 400 invalid_body', async t => {
  await expectError(t, await post('{"inputs": ', { 'content-type': 'application/json' }), 400, 'invalid_body')
  await expectError(t, await post('{"__proto__": {"x": 1}, "inputs": {}}', { 'content-type': 'application/json' }), 400, 'invalid_body')
})

t.test('413 over the body limit, not just under it', async t => {
  const limit = 64 * 1024
  const over = await post(Buffer.alloc(limit + 1, 0x90))
  await expectError(t, over, 413, 'too_large', undefined, /65536/)
  // exactly at the limit the body is read (and, being garbage, refused as msgpack: 400)
  const at = await post(Buffer.alloc(limit, 0x90))
  t.equal(at.status, 400)
})

t.test('415 for other media types, msgpack and x-msgpack accepted', async t => {
  await expectError(t, await post('hello', { 'content-type': 'text/plain' }), 415, 'unsupported_media_type', undefined, /text\/plain/)
  await expectError(t, await post(encode(ntXent()), { 'content-type': 'application/octet-stream' }), 415, 'unsupported_media_type')
  t.equal((await post(encode(ntXent()), { 'content-type': 'application/x-msgpack' })).status, 200)
})

t.test('answers and errors follow Accept, else the request type', async t => {
  const res = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: { ...MSGPACK, accept: 'application/json' }, payload: encode(ntXent()) })
  t.match(res.headers['content-type'], /^application\/json/)
  t.type(JSON.parse(res.body).loss, 'number')
  const err = await post(Buffer.from([0xc1]))
  t.equal(err.headers['content-type'], 'application/msgpack', 'a msgpack client gets a msgpack error body')
  t.ok(err.headers['x-request-id'], 'every answer carries its request id')
})

t.test('unknown routes: 404 not_found in the API error body', async t => {
  const res = await app.inject({ method: 'GET', url: '/v2/nothing' })
  t.equal(res.statusCode, 404)
  t.equal(res.json().error.code, 'not_found')
})

t.test('no input makes a 5xx: mutated bodies are answered 200 or 4xx', async t => {
  const good = encode(ntXent())
  let seed = 12345
  const rand = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32 }
  const statuses = new Set<number>()
  for (let i = 0; i < 60; i++) {
    const b = Buffer.from(good)
    const flips = 1 + Math.floor(rand() * 4)
    for (let k = 0; k < flips; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256)
    const cut = rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b
    const res = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: cut })
    statuses.add(res.statusCode)
    if (res.statusCode >= 500) t.fail(`mutation ${i} answered ${res.statusCode}: ${res.body}`)
  }
  t.ok([...statuses].every(s => s < 500), `statuses seen: ${[...statuses].join(', ')}`)
})
