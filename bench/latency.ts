// Small-request latency: nt-xent b 64, d 128 over HTTP keep-alive and over one WebSocket,
// with 1, 8 and 64 requests in flight. Each request's time is client encode -> answer
// decoded; p50 / p99 over all of them, and the throughput of the whole run. computeP50 is the
// median of the answers' meta.compute_ms (the evaluation inside the worker): p50 minus it is
// what the transport, the main thread and the worker round trip cost.
import { LossClient, type LossRequest, type LossResult } from '../src/client/index.ts'
import { Prng } from '../src/tasks/prng.ts'
import { quantile } from './stats.ts'

export interface LatencyRow { transport: 'http' | 'ws', inFlight: number, requests: number, p50: number, p99: number, perSecond: number, computeP50: number }

function request (): LossRequest<'nt-xent'> {
  const prng = new Prng(1)
  const t = (): { shape: number[], data: Float32Array } => ({ shape: [64, 128], data: Float32Array.from({ length: 64 * 128 }, () => (prng.float() - 0.5) * 0.3) })
  return { inputs: { out_1: t(), out_2: t() } }
}

async function closedLoop (inFlight: number, total: number, one: () => Promise<LossResult>): Promise<{ times: number[], compute: number[], seconds: number }> {
  const times: number[] = []
  const compute: number[] = []
  let started = 0
  const t0 = performance.now()
  const lane = async (): Promise<void> => {
    while (started < total) {
      started++
      const s = performance.now()
      const r = await one()
      times.push(performance.now() - s)
      compute.push(r.meta.compute_ms)
    }
  }
  await Promise.all(Array.from({ length: inFlight }, lane))
  return { times, compute, seconds: (performance.now() - t0) / 1000 }
}

export async function latencyRows (url: string, levels: number[], perLevel: (inFlight: number) => number, progress: (s: string) => void): Promise<LatencyRow[]> {
  const req = request()
  const client = new LossClient({ url, form: 'msgpack', retry: false })
  const rows: LatencyRow[] = []
  for (const transport of ['http', 'ws'] as const) {
    const stream = transport === 'ws' ? await client.stream({ maxInFlight: Math.max(...levels) }) : undefined
    const one = stream ? () => stream.loss('nt-xent', req) : () => client.ntXent(req)
    for (const inFlight of levels) {
      const total = perLevel(inFlight)
      await closedLoop(inFlight, Math.min(total, 4 * inFlight + 20), one) // warm-up (connections, JIT)
      progress(`latency ${transport} ${inFlight} in flight: ${total} requests`)
      const { times, compute, seconds } = await closedLoop(inFlight, total, one)
      rows.push({ transport, inFlight, requests: total, p50: quantile(times, 0.5), p99: quantile(times, 0.99), perSecond: total / seconds, computeP50: quantile(compute, 0.5) })
    }
    await stream?.close()
  }
  return rows
}
