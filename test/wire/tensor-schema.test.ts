// schemas/tensor.ts: the structural schema (sizes are the codec's) and its JSON Schema.
import t from 'tap'
import { z } from 'zod'
import { jsonTensorSchema, msgpackTensorSchema, tensorListSchema, tensorSchema } from '../../schemas/tensor.ts'

t.test('both forms parse; structure errors are caught', async t => {
  t.ok(msgpackTensorSchema.safeParse({ dtype: 'float16', shape: [2], data: Buffer.alloc(4) }).success, 'Buffer data')
  t.ok(jsonTensorSchema.safeParse({ dtype: 'float32', shape: [], data: [1] }).success, 'scalar')
  t.ok(tensorSchema.safeParse({ dtype: 'bfloat16', shape: [1, 2], data: new Uint8Array(4) }).success)
  t.ok(tensorSchema.safeParse({ dtype: 'float64', shape: [2], data: [1, 2] }).success)
  t.notOk(tensorSchema.safeParse({ dtype: 'int8', shape: [2], data: [1, 2] }).success, 'dtype')
  t.notOk(tensorSchema.safeParse({ dtype: 'float32', shape: [-1], data: [] }).success, 'negative dim')
  t.notOk(tensorSchema.safeParse({ dtype: 'float32', shape: [1.5], data: [] }).success, 'fractional dim')
  t.notOk(tensorSchema.safeParse({ dtype: 'float32', shape: new Array(9).fill(1), data: [1] }).success, 'rank 9')
  t.notOk(tensorSchema.safeParse({ dtype: 'float32', shape: [1], data: [null] }).success, 'null element')
  t.notOk(tensorSchema.safeParse({ dtype: 'float32', shape: [1], data: 'AAAA' }).success, 'string data')
  t.notOk(msgpackTensorSchema.safeParse({ dtype: 'float32', shape: [1], data: [1] }).success, 'msgpack form needs bytes')
  t.ok(tensorListSchema.safeParse([{ dtype: 'float32', shape: [1], data: [1] }]).success)
  t.notOk(tensorListSchema.safeParse([]).success, 'an empty list')
})

t.test('JSON Schema for the OpenAPI document (bin as string/binary)', async t => {
  const js = z.toJSONSchema(tensorListSchema, { unrepresentable: 'any' }) as any
  const mp = js.$defs.MsgpackTensor
  t.same(mp.properties.data.type, 'string')
  t.same(mp.properties.data.format, 'binary')
  t.same(mp.properties.dtype.enum, ['float32', 'float16', 'bfloat16', 'float64'])
  t.equal(mp.properties.shape.maxItems, 8)
  t.same(js.$defs.JsonTensor.properties.data.items, { type: 'number' })
  t.ok(js.$defs.Tensor.description.length > 0)
})
