// Order statistics of timings (medians over repeats after warm-up, as bench/peer.py reports).

export interface Summary { median: number, min: number, max: number, n: number }

export function quantile (xs: number[], q: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const pos = (s.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return s[lo] + (s[hi] - s[lo]) * (pos - lo)
}

export function summary (xs: number[]): Summary {
  return { median: quantile(xs, 0.5), min: Math.min(...xs), max: Math.max(...xs), n: xs.length }
}
