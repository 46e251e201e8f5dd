// The core's tensor: float32 host memory, row-major (C order), NCHW for maps as on the wire.
// Computation is float32 whatever the wire dtype (../shared/spec/API.md "Tensors").
export type WireDtype = 'float32' | 'float16' | 'bfloat16' | 'float64'
export const WIRE_DTYPES: readonly WireDtype[] = ['float32', 'float16', 'bfloat16', 'float64']

export interface HostTensor {
  shape: number[]
  data: Float32Array
}

export function sizeOf (shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

export function hostTensor (shape: number[], data?: Float32Array): HostTensor {
  const n = sizeOf(shape)
  if (data && data.length !== n) throw new Error(`hostTensor: shape [${shape.join(', ')}] needs ${n} elements, got ${data.length}`)
  return { shape, data: data ?? new Float32Array(n) }
}
