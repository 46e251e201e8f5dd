// The wire dtype table (../shared/spec/API.md "Tensors"): names exactly as on the wire,
// bytes per element, and the names NumPy / PyTorch use, for messages and docs.
// Every dtype is little-endian IEEE 754 (bfloat16: the upper half of a float32).
import type { WireDtype } from '../tensor.ts'

export type { WireDtype }

export interface DtypeInfo {
  readonly name: WireDtype
  /** bytes per element in a msgpack `bin` */
  readonly itemsize: number
  /** significand bits stored (without the implicit 1); for the precision notes */
  readonly mantissaBits: number
  readonly numpy: string
  readonly torch: string
}

export const DTYPES: Readonly<Record<WireDtype, DtypeInfo>> = Object.freeze({
  float32: Object.freeze({ name: 'float32', itemsize: 4, mantissaBits: 23, numpy: 'float32', torch: 'torch.float32' }),
  float16: Object.freeze({ name: 'float16', itemsize: 2, mantissaBits: 10, numpy: 'float16', torch: 'torch.float16' }),
  bfloat16: Object.freeze({ name: 'bfloat16', itemsize: 2, mantissaBits: 7, numpy: '(none; ml_dtypes.bfloat16)', torch: 'torch.bfloat16' }),
  float64: Object.freeze({ name: 'float64', itemsize: 8, mantissaBits: 52, numpy: 'float64', torch: 'torch.float64' })
} as const)

export const DTYPE_NAMES = Object.freeze(Object.keys(DTYPES)) as readonly WireDtype[]

/** Own-property lookup, so 'constructor' or '__proto__' is never mistaken for a dtype. */
export function isWireDtype (x: unknown): x is WireDtype {
  return typeof x === 'string' && Object.hasOwn(DTYPES, x)
}

export function itemsize (dtype: WireDtype): number {
  return DTYPES[dtype].itemsize
}
