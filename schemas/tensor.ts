// A tensor on the wire (API.md "Tensors"; byte layout in docs/wire-format.md). Structural
// only: src/wire/tensor-codec.ts checks sizes (prod(shape) * itemsize, element limits)
// before it allocates anything, with the messages and paths the API promises.
import { z } from 'zod'
import { wireDtype } from './options.ts'

export const MAX_RANK = 8

const dtype = wireDtype.describe('element type on the wire; computation is float32 whatever it is')
const shape = z.array(z.number().int().min(0)).max(MAX_RANK)
  .describe('dimensions, row-major (C order) like NumPy / PyTorch .contiguous(); rank 0 to 8')

/** msgpack form: `data` is a `bin` of prod(shape) * itemsize little-endian bytes. */
export const msgpackTensorSchema = z.object({
  dtype,
  shape,
  data: z.instanceof(Uint8Array)
    .meta({ type: 'string', format: 'binary' })
    .describe('msgpack bin: prod(shape) * itemsize bytes, little-endian (float32 4, float16 2, bfloat16 2, float64 8)')
}).meta({ id: 'MsgpackTensor', description: 'a tensor in a msgpack body; NumPy: {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.tobytes()}' })

/** JSON form: `data` is the flat list of prod(shape) numbers (JSON has no NaN / Infinity). */
export const jsonTensorSchema = z.object({
  dtype,
  shape,
  data: z.array(z.number()).describe('the prod(shape) elements, flattened row-major; float16/bfloat16 values are rounded to that dtype')
}).meta({ id: 'JsonTensor', description: 'a tensor in a JSON body; NumPy: {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.ravel().tolist()}' })

/** Either form (the body's Content-Type decides which one a client sends). */
export const tensorSchema = z.union([msgpackTensorSchema, jsonTensorSchema])
  .meta({ id: 'Tensor', description: 'a tensor: {dtype, shape, data}; data is bytes in msgpack, numbers in JSON' })

/** A list of tensors (feature-map-contrastive: one per feature map). */
export const tensorListSchema = z.array(tensorSchema).min(1)
  .meta({ id: 'TensorList', description: 'a list of tensors, e.g. one per feature map' })

export type MsgpackTensor = z.infer<typeof msgpackTensorSchema>
export type JsonTensor = z.infer<typeof jsonTensorSchema>
export type WireTensorInput = z.infer<typeof tensorSchema>
