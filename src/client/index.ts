// ssl-loss-server/client: the TypeScript client of the wire API (../shared/spec/API.md).
//   const client = new LossClient({ url: 'http://127.0.0.1:8080', form: 'msgpack' })
//   const r = await client.ntXent({ inputs: { out_1: { shape: [b, d], data }, out_2 } })
//   r.loss, r.grads.out_1.data (Float32Array)
//   const s = await client.stream({ maxInFlight: 8 }); await s.loss('cpc', {...}); await s.close()
export { LossClient, type LossClientOptions } from './client.ts'
export { LossStream, type StreamOptions } from './stream.ts'
export { LossClientError } from './errors.ts'
export { DEFAULT_RETRY, backoffMs, parseRetryAfter, type RetryPolicy } from './retry.ts'
export type { ClientTensor, ClientTensorTree, TensorLike, TensorTreeLike } from './tensors.ts'
export type { CreateTaskRequest, Exchange, KindConfigs, KindName, LossRequest, LossResult, TaskInfo, TaskLossRequest } from './types.ts'
