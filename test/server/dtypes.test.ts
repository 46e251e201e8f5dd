// Gradients go back in the dtype of the tensor they belong to (float16 in, float16 out),
// unless options.grad_dtype says otherwise; JSON and msgpack agree.
import t from 'tap'
import { encode } from '../../src/wire/msgpack.ts'
import { encodeTensor } from '../../src/wire/tensor-codec.ts'
import { MSGPACK, answerOf, tensorValues, testServer } from '../helpers/server.ts'
import { relErrNorm } from '../helpers/fixtures.ts'

const { app } = await testServer(t, {})
const host = (s: number) => ({ shape: [4, 8], data: Float32Array.from({ length: 32 }, (_, i) => Math.sin(s + i)) })
const inputs = {
  out_1: encodeTensor(host(1), 'float16', 'msgpack'),
  out_2: encodeTensor(host(2), 'float64', 'msgpack')
}

t.test('grads in the dtype of each input', async t => {
  const res = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: encode({ inputs }) })
  t.equal(res.statusCode, 200)
  const a = answerOf(res)
  t.equal(a.grads.out_1.dtype, 'float16')
  t.equal(a.grads.out_1.data.byteLength, 32 * 2)
  t.equal(a.grads.out_2.dtype, 'float64')
  t.equal(a.grads.out_2.data.byteLength, 32 * 8)

  const forced = answerOf(await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: encode({ inputs, options: { grad_dtype: 'float32' } }) }))
  t.same([forced.grads.out_1.dtype, forced.grads.out_2.dtype], ['float32', 'float32'])
  t.ok(relErrNorm(tensorValues(a.grads.out_2), tensorValues(forced.grads.out_2)) < 1e-7, 'float64 carries the float32 result exactly')
  t.ok(relErrNorm(tensorValues(a.grads.out_1), tensorValues(forced.grads.out_1)) < 1e-3, 'float16 rounds it')

  const json = answerOf(await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: { ...MSGPACK, accept: 'application/json' }, payload: encode({ inputs }) }))
  t.same(json.grads.out_1.data, tensorValues(a.grads.out_1), 'JSON numbers equal the float16 bytes')
  t.equal(json.loss, a.loss)
})

t.test('gradients: false leaves them out', async t => {
  const a = answerOf(await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: encode({ inputs, options: { gradients: false } }) }))
  t.type(a.loss, 'number')
  t.equal(a.grads, undefined)
})
