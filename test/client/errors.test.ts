// Error mapping against the real app: API errors over HTTP (both forms) and over the stream
// become LossClientError { status, code, message, path }; a stream keeps working after an
// error answer; closing a stream rejects what it still had in flight.
import t from 'tap'
import { testServer, heavyNtXent } from '../helpers/server.ts'
import { decode } from '../../src/wire/msgpack.ts'
import { LossClient, LossClientError } from '../../src/client/index.ts'

const { url } = await testServer(t, { listen: true })
const good = { out_1: { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }, out_2: { shape: [2, 3], data: new Float32Array([6, 5, 4, 3, 2, 1]) } }
const mismatched = { out_1: good.out_1, out_2: { shape: [2, 2], data: new Float32Array(4) } }

for (const form of ['msgpack', 'json'] as const) {
  t.test(`HTTP ${form}: 400 shape_mismatch with the path, 404 unknown_kind, 400 invalid_config`, async t => {
    const client = new LossClient({ url, form })
    const err = await client.ntXent({ inputs: mismatched }).catch(e => e)
    t.ok(err instanceof LossClientError, 'a LossClientError')
    t.match(err, { status: 400, code: 'shape_mismatch', path: ['inputs', 'out_2', 'shape'] })
    t.match(err.message, /\[2, 2\]/, `the message names the shapes: ${err.message}`)
    await t.rejects(client.loss('no-such-kind' as 'nt-xent', { inputs: good }), { status: 404, code: 'unknown_kind' })
    await t.rejects(client.ntXent({ config: { temperature: -1 }, inputs: good }), { status: 400, code: 'invalid_config', path: ['config', 'temperature'] })
  })
}

t.test('stream: error answers carry status, code and path; the stream goes on', async t => {
  const stream = await new LossClient({ url }).stream({ maxInFlight: 4 })
  const [bad, ok, unknownTask] = await Promise.allSettled([
    stream.loss('nt-xent', { inputs: mismatched }),
    stream.loss('nt-xent', { inputs: good }),
    stream.taskLoss('no-such-task', { inputs: good })
  ])
  t.match(bad, { status: 'rejected', reason: { name: 'LossClientError', status: 400, code: 'shape_mismatch', path: ['inputs', 'out_2', 'shape'] } })
  t.equal(ok.status, 'fulfilled')
  if (ok.status === 'fulfilled') t.ok(Number.isFinite(ok.value.loss))
  t.match(unknownTask, { status: 'rejected', reason: { status: 404, code: 'unknown_task' } })
  await stream.close()
})

t.test('stream: terminate rejects requests still unanswered with connection_closed', async t => {
  const stream = await new LossClient({ url }).stream({ maxInFlight: 1 })
  const heavy = decode(heavyNtXent(256, 256)) as { inputs: Record<string, { dtype: 'float32', shape: number[], data: Uint8Array }> }
  const a = stream.loss('nt-xent', { inputs: heavy.inputs })
  const b = stream.loss('nt-xent', { inputs: good })
  t.same(stream.pending, { inFlight: 1, waiting: 1 })
  await stream.terminate()
  await t.rejects(a, { code: 'connection_closed', status: 0 })
  await t.rejects(b, { code: 'connection_closed', status: 0 })
})

t.test('stream to a port with no server: connection_failed', async t => {
  await t.rejects(new LossClient({ url: 'http://127.0.0.1:1' }).stream(), { name: 'LossClientError', code: 'connection_failed' })
})
