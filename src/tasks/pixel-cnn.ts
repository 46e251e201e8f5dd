// Bolts' PixelCNN context network (pl_bolts/models/vision/pixel_cnn.py; CPC v2, Hénaff et al.
// 2019, arXiv:1905.09272 p. 15), in NHWC as matrix products only.
//
// Why no tf.conv2d: the wasm backend has no Conv2DBackpropFilter, so gradients w.r.t. the
// weights would fail there. Every convolution is im2col (the kernel's shifted slices
// concatenated along channels) followed by one matMul, which every backend differentiates
// w.r.t. both the activations and the weights.
//
// Per block (Sequential indices as in Bolts):
//   0 conv 1x1 C->H, 1 ReLU,
//   2 conv 1x3 H->H, no padding                (width w -> w-2),
//   3 ConstantPad2d((0, 0, 1, 0), 1)            (one row of 1.0 on TOP: height h -> h+1),
//   4 conv 2x1 H->H, padding (0, 1)             (zeros on both sides of the width, applied
//                                                by the conv AFTER the 1.0 row, so the padded
//                                                corners are 0: width w-2 -> w, height h+1 -> h),
//   5 ReLU, 6 conv 1x1 H->C;
// c = c + block(c), and the network returns relu(c).
import * as tf from '@tensorflow/tfjs'
import { matMul } from './mat-mul.ts'
import { relu } from './relu.ts'

/**
 * One convolution as a matrix. A 1×1 convolution keeps PyTorch's (out, in) layout and is applied
 * with transposeB (no transpose of the weight, forward or backward); a wider kernel becomes an
 * im2col matrix (kh·kw·in, out), rows ordered (dy, dx, in) as the slices are concatenated.
 */
export interface MatConv {
  /** (out, in) when `outIn`, else (kh·kw·in, out) */
  w: tf.Tensor2D
  outIn: boolean
  out: number
  /** (out) */
  b: tf.Tensor1D
}

export interface PixelCnnBlock { c0: MatConv, c2: MatConv, c4: MatConv, c6: MatConv }

/**
 * PyTorch (out, in, kh, kw) weight -> im2col matrix (kh·kw·in, out). Differentiable, so a
 * gradient taken w.r.t. the PyTorch-layout tensor comes back in PyTorch layout.
 */
export function toMatConv (weight: tf.Tensor, bias: tf.Tensor): MatConv {
  const [out, inp, kh, kw] = weight.shape
  if (kh === 1 && kw === 1) return { w: tf.reshape(weight, [out, inp]), outIn: true, out, b: bias as tf.Tensor1D }
  return { w: tf.reshape(tf.transpose(weight, [2, 3, 1, 0]), [kh * kw * inp, out]), outIn: false, out, b: bias as tf.Tensor1D }
}

/** The blocks of state_dict() prefix `context_cnn.blocks` (see src/tasks/cpc-params.ts). */
export function pixelCnnBlocks (params: Record<string, tf.Tensor>, numBlocks: number, prefix = 'context_cnn.blocks'): PixelCnnBlock[] {
  const conv = (k: number, i: number): MatConv => toMatConv(params[`${prefix}.${k}.${i}.weight`], params[`${prefix}.${k}.${i}.bias`])
  const blocks: PixelCnnBlock[] = []
  for (let k = 0; k < numBlocks; k++) blocks.push({ c0: conv(k, 0), c2: conv(k, 2), c4: conv(k, 4), c6: conv(k, 6) })
  return blocks
}

/** rows (n, in) · (in, out) + bias */
function affine (x: tf.Tensor2D, c: MatConv): tf.Tensor2D {
  return tf.add(matMul(x, c.w, false, c.outIn), c.b)
}

/** x (b, h, w, H) -> conv 1x3 without padding -> (b, h, w-2, H) */
function conv1x3 (x: tf.Tensor4D, c: MatConv): tf.Tensor4D {
  const [b, h, w, ch] = x.shape
  const wo = w - 2
  const cols = tf.concat([0, 1, 2].map(dx => tf.slice(x, [0, 0, dx, 0], [b, h, wo, ch])), 3)
  return tf.reshape(affine(tf.reshape(cols, [b * h * wo, 3 * ch]), c), [b, h, wo, c.out])
}

/** x (b, h, w-2, H) -> 1.0 row on top, zero columns left and right, conv 2x1 -> (b, h, w, H) */
function padConv2x1 (x: tf.Tensor4D, c: MatConv): tf.Tensor4D {
  const [b, h, wi, ch] = x.shape
  const w = wi + 2
  const top = tf.pad(x, [[0, 0], [1, 0], [0, 0], [0, 0]], 1)
  const padded = tf.pad(top, [[0, 0], [0, 0], [1, 1], [0, 0]], 0)
  const cols = tf.concat([0, 1].map(dy => tf.slice(padded, [0, dy, 0, 0], [b, h, w, ch])), 3)
  return tf.reshape(affine(tf.reshape(cols, [b * h * w, 2 * ch]), c), [b, h, w, c.out])
}

/** context = PixelCNN(z); z and the result are (b, h, w, C), h >= 1, w >= 3. */
export function pixelCnn (z: tf.Tensor4D, blocks: readonly PixelCnnBlock[]): tf.Tensor4D {
  const [b, h, w, ch] = z.shape
  const rows = b * h * w
  let c = tf.reshape(z, [rows, ch]) as tf.Tensor2D
  for (const blk of blocks) {
    const hidden = blk.c0.out
    const y0 = tf.reshape(relu(affine(c, blk.c0)), [b, h, w, hidden]) as tf.Tensor4D
    const y2 = conv1x3(y0, blk.c2)
    const y4 = relu(padConv2x1(y2, blk.c4))
    const y6 = affine(tf.reshape(y4, [rows, hidden]) as tf.Tensor2D, blk.c6)
    c = tf.add(c, y6)
  }
  return tf.reshape(relu(c), [b, h, w, ch])
}
