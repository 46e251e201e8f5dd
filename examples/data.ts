// Synthetic images for the demo, generated in code (no downloads): each image is a dimly
// tinted 20x20 RGB canvas with 1-3 coloured shapes (square, disc, ring, cross) at random places.
// A training pair is two augmented views of one image, as AMDIM and SimCLR build them
// (Bachman et al. 2019, "Learning Representations by Maximizing Mutual Information Across
// Views", section 3; Chen et al. 2020, SimCLR, section 3): a random 16x16 crop, a random
// horizontal flip and Gaussian pixel noise. Every draw comes from the seeded PRNG, so a seed
// gives the same batches on every run and backend.
import { Prng } from '../src/tasks/prng.ts'

export const CANVAS = 20
export const VIEW = 16
export const CHANNELS = 3

type Shape = 'square' | 'disc' | 'ring' | 'cross'
const SHAPES: Shape[] = ['square', 'disc', 'ring', 'cross']

function inside (shape: Shape, dx: number, dy: number, r: number): boolean {
  const d = Math.hypot(dx, dy)
  switch (shape) {
    case 'square': return Math.abs(dx) <= r && Math.abs(dy) <= r
    case 'disc': return d <= r
    case 'ring': return d <= r && d >= r - 1.5
    case 'cross': return (Math.abs(dx) <= 1 && Math.abs(dy) <= r) || (Math.abs(dy) <= 1 && Math.abs(dx) <= r)
  }
}

/** One image, HWC float32 in [0, 1]. */
export function drawImage (rng: Prng): Float32Array {
  const img = new Float32Array(CANVAS * CANVAS * CHANNELS)
  // a dim background tint of its own, so that every location (not only the shapes) says
  // something about which image it belongs to
  const tint = [0.4 * rng.float(), 0.4 * rng.float(), 0.4 * rng.float()]
  for (let i = 0; i < img.length; i++) img[i] = tint[i % CHANNELS] + 0.05 * rng.float()
  const count = 1 + rng.int(3)
  for (let s = 0; s < count; s++) {
    const shape = SHAPES[rng.int(SHAPES.length)]
    const cx = rng.uniform(4, CANVAS - 4)
    const cy = rng.uniform(4, CANVAS - 4)
    const r = rng.uniform(2.5, 5)
    const colour = [rng.float(), rng.float(), rng.float()]
    for (let y = 0; y < CANVAS; y++) {
      for (let x = 0; x < CANVAS; x++) {
        if (!inside(shape, x - cx, y - cy, r)) continue
        for (let c = 0; c < CHANNELS; c++) img[(y * CANVAS + x) * CHANNELS + c] = colour[c]
      }
    }
  }
  return img
}

/** A random VIEW x VIEW crop, maybe flipped, plus noise, written at `out[offset..]` (HWC). */
function augment (rng: Prng, img: Float32Array, out: Float32Array, offset: number, noise: number): void {
  const ox = rng.int(CANVAS - VIEW + 1)
  const oy = rng.int(CANVAS - VIEW + 1)
  const flip = rng.float() < 0.5
  for (let y = 0; y < VIEW; y++) {
    for (let x = 0; x < VIEW; x++) {
      const sx = ox + (flip ? VIEW - 1 - x : x)
      for (let c = 0; c < CHANNELS; c++) {
        // Box-Muller would cost two draws; the sum of three uniforms is close enough to a
        // Gaussian for pixel noise (variance 3/12 before scaling).
        const n = (rng.float() + rng.float() + rng.float() - 1.5) * 2 * noise
        out[offset + (y * VIEW + x) * CHANNELS + c] = img[((oy + y) * CANVAS + sx) * CHANNELS + c] + n
      }
    }
  }
}

/** A batch of `b` images as two views each: NHWC float32 arrays of shape (b, 16, 16, 3). */
export function viewPairs (rng: Prng, b: number, noise = 0.05): { view1: Float32Array, view2: Float32Array, shape: [number, number, number, number] } {
  const per = VIEW * VIEW * CHANNELS
  const view1 = new Float32Array(b * per)
  const view2 = new Float32Array(b * per)
  for (let n = 0; n < b; n++) {
    const img = drawImage(rng)
    augment(rng, img, view1, n * per, noise)
    augment(rng, img, view2, n * per, noise)
  }
  return { view1, view2, shape: [b, VIEW, VIEW, CHANNELS] }
}
