// The cost model of ../shared/spec/LOSSES.md "Cost" (multiply-adds of the forward pass,
// forward + backward = 3 x forward, 2 flops per multiply-add), ported from bench/peer.py
// (gflop_fmct, gflop_cpc, gflop_nt_xent) so server and peer GFLOP/s use the same numerator.

export function gflopFmct (b: number, c: number, targetAreas: number[], bidirectional: boolean): number {
  let s = 0
  for (const L of targetAreas) s += b * b * c * L
  return 3 * 2 * (bidirectional ? 2 : 1) * s / 1e9
}

/** cpc, each step evaluated once (what the server does; peer.py without --literal). */
export function gflopCpc (b: number, C: number, h: number, w: number, T: number, H: number, K: number): number {
  const pixel = K * b * h * (w * (2 * C * H + 2 * H * H) + 3 * (w - 2) * H * H)
  const heads = 2 * b * h * w * C * T
  let rows = 0
  for (let i = 1; i < h - 1; i++) rows += h - i - 1
  const logits = b * b * w * w * h * T * rows
  return 3 * 2 * (pixel + heads + logits) / 1e9
}

export function gflopNtXent (b: number, d: number): number {
  return 3 * 2 * (2 * b) ** 2 * d / 1e9
}
