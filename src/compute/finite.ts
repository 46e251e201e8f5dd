// First non-finite element of a float32 array, or -1. x * 0 is 0 for every finite x and NaN
// for ±Infinity and NaN, so one branch-free pass settles the common all-finite case and
// a second scan runs only when there is something to report.
export function firstNonFinite (data: Float32Array): number {
  let s = 0
  for (let i = 0; i < data.length; i++) s += data[i] * 0
  if (s === 0) return -1
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i
  return -1
}
