// `npm run bench [-- options]`: the server (a child process running server/start.ts, the real
// entry) against the PyTorch peer (bench/peer.py) on the workloads of issue 4/6, plus the
// codec alone and small-request latency. Progress on stderr, tables on stdout, --json FILE
// for the numbers. Not a test: it prints and never asserts.
//
// Why --workers 1 by default: peer.py runs torch with 2 intra-op threads (the 2 cores of
// this machine). One tfjs-node worker also uses every core for one op (TensorFlow's
// intra-op pool sizes itself to the machine), so one worker computes one request with the
// same 2 cores torch gets; a second worker would only compete for them, and with more
// workers compute_ms would measure contention, not kernels.
import os from 'node:os'
import fs from 'node:fs'
import { parseArgs } from 'node:util'
import { LossClient, type Exchange, type LossResult } from '../src/client/index.ts'
import { WORKLOADS, tensorBytes, type Workload } from './workloads.ts'
import { startServer, peakTracker, rssBytes, type ServerProcess } from './server-process.ts'
import { runPeer, type PeerOutcome } from './peer-run.ts'
import { codecRates, type CodecRate } from './codec-rate.ts'
import { measureFloors, type Floors } from './floors.ts'
import { installedBackends } from '../src/compute/backends-installed.ts'
import { latencyRows, type LatencyRow } from './latency.ts'
import { summary, type Summary } from './stats.ts'
import { table, ms, range, ratio, mb } from './table.ts'

const HELP = `usage: npm run bench -- [options]
  --workloads a,b     ${Object.keys(WORKLOADS).join(',')} (default: all)
  --backend B         tensorflow | wasm | cpu (default: tensorflow when its addon is built
                      (npm run setup:tensorflow), else wasm, with a note)
  --workers N         server workers (default 1: the peer's 2 threads on 2 cores; see bench/run.ts)
  --repeats N         timed runs per transport (default 5)
  --warmup K          untimed runs first (default 1)
  --threads T         torch threads of the peer (default 2)
  --json FILE         also write every number to FILE
  --no-peer           skip PyTorch    --no-codec   skip the codec    --no-latency  skip latency
  --no-floors         skip the machine floors (fresh-memory writes, bare node:http loopback)
  --latency-requests N  requests per latency level (default 200)
  --url URL           bench a server that is already running (no RSS, no spawn)`

const { values: a } = parseArgs({
  options: {
    workloads: { type: 'string' }, backend: { type: 'string' }, workers: { type: 'string', default: '1' },
    repeats: { type: 'string', default: '5' }, warmup: { type: 'string', default: '1' }, threads: { type: 'string', default: '2' },
    json: { type: 'string' }, 'no-peer': { type: 'boolean' }, 'no-codec': { type: 'boolean' }, 'no-latency': { type: 'boolean' }, 'no-floors': { type: 'boolean' },
    'latency-requests': { type: 'string', default: '200' }, url: { type: 'string' }, help: { type: 'boolean' }
  }
})
if (a.help) { console.log(HELP); process.exit(0) }
const names = a.workloads ? a.workloads.split(',').map(s => s.trim()).filter(Boolean) : Object.keys(WORKLOADS)
for (const n of names) if (!WORKLOADS[n]) { console.error(`unknown workload '${n}'\n${HELP}`); process.exit(2) }
const repeats = Math.max(1, Number(a.repeats))
const warmup = Math.max(0, Number(a.warmup))
const progress = (s: string): void => { process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`) }

interface Row {
  workload: string, describe: string, kind: string, gflop: number, tensorBytes: number
  compute: Summary, queue: Summary, http: Summary, ws: Summary
  clientEncode: Summary, clientDecode: Summary, wsEncode: Summary, wsDecode: Summary
  bytesUp: number, bytesDown: number, wsBytesUp: number, wsBytesDown: number
  rssBefore?: number, rssPeak?: number, rssBeforeWs?: number, rssPeakWs?: number
  peer?: { median: number, min: number, max: number, torch: string, threads: number, loss: number }
  loss: number
  precision?: { lossRelErr: number, gradRelErr: number, against: string }
}

// a zero-copy view takes microseconds: say so rather than print an absurd rate
const gbs = (rate: number, took: number): string => took < 0.1 ? 'view' : rate.toFixed(2)
const growth = (peak: number | undefined, before: number | undefined, bytes: number): string => peak === undefined || before === undefined ? '-' : ((peak - before) / bytes).toFixed(2)
const load = (): string => os.loadavg().map(x => x.toFixed(2)).join(' ')

/** ||a - b|| / ||b|| over every gradient tensor of two answers (same structure). */
function gradRelErr (got: LossResult, ref: LossResult): number {
  let num = 0
  let den = 0
  const walk = (g: unknown, r: unknown): void => {
    if (Array.isArray(r)) { r.forEach((x, i) => walk((g as unknown[])[i], x)); return }
    const gd = (g as { data: Float32Array }).data
    const rd = (r as { data: Float32Array }).data
    for (let i = 0; i < rd.length; i++) { const d = gd[i] - rd[i]; num += d * d; den += rd[i] * rd[i] }
  }
  for (const [k, r] of Object.entries(ref.grads ?? {})) walk(got.grads?.[k], r)
  return Math.sqrt(num / den)
}

async function benchWorkload (w: Workload, server: { url: string, pid?: number }, refs: Map<string, LossResult>): Promise<Row> {
  progress(`${w.name}: building inputs (${w.describe})`)
  const req = w.request()
  const tb = tensorBytes(req)
  let last: Exchange | undefined
  const onExchange = (e: Exchange): void => { last = e }
  const client = new LossClient({ url: server.url, form: 'msgpack', retry: false, onExchange })
  const rssBefore = server.pid ? rssBytes(server.pid) : undefined
  const peak = server.pid ? peakTracker(server.pid) : undefined
  const c: number[] = []; const q: number[] = []; const h: number[] = []; const ce: number[] = []; const cd: number[] = []
  let result: LossResult | undefined
  for (let i = 0; i < warmup + repeats; i++) {
    const r = await client.loss(w.kind, req)
    progress(`${w.name}: http ${i < warmup ? 'warm-up' : `${i - warmup + 1}/${repeats}`} ${ms(last!.totalMs)} ms (compute ${ms(r.meta.compute_ms)} ms)`)
    if (i >= warmup) { c.push(r.meta.compute_ms); q.push(r.meta.queue_ms); h.push(last!.totalMs); ce.push(last!.encodeMs); cd.push(last!.decodeMs) }
    result = r
  }
  const httpEx = last!
  // the peaks of HTTP and of the WebSocket apart: they take different paths through the server
  const rssPeak = peak?.stop()
  const rssBeforeWs = server.pid ? rssBytes(server.pid) : undefined
  const peakWs = server.pid ? peakTracker(server.pid) : undefined
  const stream = await client.stream({ maxInFlight: 1, onExchange })
  const wt: number[] = []; const we: number[] = []; const wd: number[] = []
  for (let i = 0; i < warmup + repeats; i++) {
    await stream.loss(w.kind, req)
    progress(`${w.name}: ws ${i < warmup ? 'warm-up' : `${i - warmup + 1}/${repeats}`} ${ms(last!.totalMs)} ms`)
    if (i >= warmup) { wt.push(last!.totalMs); we.push(last!.encodeMs); wd.push(last!.decodeMs) }
  }
  await stream.close()
  const wsEx = last!
  const rssPeakWs = peakWs?.stop()
  const row: Row = {
    workload: w.name, describe: w.describe, kind: w.kind, gflop: w.gflop, tensorBytes: tb,
    compute: summary(c), queue: summary(q), http: summary(h), ws: summary(wt),
    clientEncode: summary(ce), clientDecode: summary(cd), wsEncode: summary(we), wsDecode: summary(wd),
    bytesUp: httpEx.requestBytes, bytesDown: httpEx.responseBytes, wsBytesUp: wsEx.requestBytes, wsBytesDown: wsEx.responseBytes,
    ...(rssBefore !== undefined ? { rssBefore } : {}), ...(rssPeak !== undefined ? { rssPeak } : {}),
    ...(rssBeforeWs !== undefined ? { rssBeforeWs } : {}), ...(rssPeakWs !== undefined ? { rssPeakWs } : {}),
    loss: result!.loss
  }
  const ref = refs.get(w.peer)
  if (ref && w.peer !== w.name) row.precision = { lossRelErr: Math.abs(result!.loss - ref.loss) / Math.abs(ref.loss), gradRelErr: gradRelErr(result!, ref), against: w.peer }
  else refs.set(w.name, result!)
  return row
}

const machine = `${os.cpus()[0]?.model ?? 'cpu'} x${os.availableParallelism()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, node ${process.version}`
progress(`machine: ${machine}; load average ${load()}`)
const startLoad = load()

let server: ServerProcess | undefined
const target = a.url ? { url: a.url.replace(/\/+$/, '') } : undefined
if (a.backend === undefined) {
  a.backend = installedBackends().includes('tensorflow') ? 'tensorflow' : 'wasm'
  if (a.backend === 'wasm' && !a.url) progress('NOTE: the tensorflow backend is not built here (npm run setup:tensorflow builds it); benchmarking the embedded wasm backend, which is several times slower on the big workloads')
}
if (!target) server = await startServer({ backend: a.backend, workers: Number(a.workers), log: progress })
const where = target ?? { url: server!.url, pid: server!.pid }
const rows: Row[] = []
const refs = new Map<string, LossResult>()
const peers = new Map<string, PeerOutcome>()
let latency: LatencyRow[] = []
let codec: CodecRate[] = []
let floors: Floors | undefined
let torchNote = ''
try {
  const idleRss = server ? rssBytes(server.pid) : undefined
  if (idleRss !== undefined) progress(`server idle RSS ${mb(idleRss)} MB`)
  for (const n of names) {
    const w = WORKLOADS[n]
    rows.push(await benchWorkload(w, where, refs))
    if (!a['no-peer'] && !torchNote) {
      let p = peers.get(w.peer)
      if (!p) {
        progress(`${w.name}: PyTorch peer (${repeats} repeats, ${warmup} warm-up, ${a.threads} threads)`)
        p = await runPeer(w.peer, repeats, warmup, Number(a.threads))
        peers.set(w.peer, p)
      }
      if (p.ok) rows[rows.length - 1].peer = { median: p.result.median_ms, min: p.result.min_ms, max: p.result.max_ms, torch: p.result.torch_version, threads: p.result.threads, loss: p.result.loss }
      else if (p.missingTorch) torchNote = `PyTorch peer unavailable (${p.message}): server numbers only`
      else progress(`${w.name}: peer failed: ${p.message}`)
    }
  }
  if (!a['no-latency']) latency = await latencyRows(where.url, [1, 8, 64], n => Math.max(Number(a['latency-requests']), 4 * n), progress)
} finally {
  await server?.stop()
}
if (!a['no-floors']) {
  // the largest request of the run (amdim's 154 MB when it ran), up and down
  const bytes = Math.max(0, ...rows.map(r => r.bytesUp)) || 154e6
  progress(`floors: fresh memory and bare loopback HTTP, ${mb(bytes)} MB`)
  floors = await measureFloors(bytes)
}
if (!a['no-codec']) { progress('codec: 150 MB float32, float16, bfloat16'); codec = codecRates() }
const endLoad = load()

// ---- output -------------------------------------------------------------------------------
const out: string[] = []
out.push(`machine: ${machine}`)
out.push(`server: ${a.url ?? `${a.backend}, ${a.workers} worker(s)`}; repeats ${repeats} after ${warmup} warm-up; load average at start ${startLoad}, at end ${endLoad}`)
const torch = rows.find(r => r.peer)?.peer
out.push(torchNote || (torch ? `peer: torch ${torch.torch}, ${torch.threads} threads, in-process forward + backward` : 'peer: skipped'))
out.push('times in ms: median [min-max]; e2e = client encode -> answer decoded over loopback; ratios against torch medians')
out.push('')
out.push(table(
  ['workload', 'GFLOP', 'compute', 'http e2e', 'ws e2e', 'torch', 'comp/t', 'http/t', 'ws/t', 'GF/s srv', 'GF/s t', 'MB up', 'MB down', 'RSS peak MB http/ws', 'growth/tensors http/ws'],
  rows.map(r => [
    r.workload, r.gflop.toFixed(r.gflop < 1 ? 3 : 1), range(r.compute), range(r.http), range(r.ws), range(r.peer),
    ratio(r.compute.median, r.peer?.median), ratio(r.http.median, r.peer?.median), ratio(r.ws.median, r.peer?.median),
    (r.gflop / r.compute.median * 1e3).toFixed(1), r.peer ? (r.gflop / r.peer.median * 1e3).toFixed(1) : '-',
    mb(r.bytesUp), mb(r.bytesDown), `${mb(r.rssPeak)} / ${mb(r.rssPeakWs)}`,
    r.rssPeak !== undefined && r.rssBefore !== undefined ? `${growth(r.rssPeak, r.rssBefore, r.tensorBytes)} / ${growth(r.rssPeakWs, r.rssBeforeWs, r.tensorBytes)}x of ${mb(r.tensorBytes)} MB` : '-'
  ])))
out.push('')
out.push('where the HTTP time goes (medians, ms): rest = e2e - compute - queue - client encode - client decode (server decode/prepare/worker transfer/encode + loopback)')
out.push(table(['workload', 'http e2e', 'compute', 'queue', 'cl encode', 'cl decode', 'rest', 'ws e2e', 'ws rest'],
  rows.map(r => {
    const rest = r.http.median - r.compute.median - r.queue.median - r.clientEncode.median - r.clientDecode.median
    const wsRest = r.ws.median - r.compute.median - r.queue.median - r.wsEncode.median - r.wsDecode.median
    return [r.workload, ms(r.http.median), ms(r.compute.median), ms(r.queue.median), ms(r.clientEncode.median), ms(r.clientDecode.median), ms(rest), ms(r.ws.median), ms(wsRest)]
  })))
const prec = rows.filter(r => r.precision)
if (prec.length > 0) {
  out.push('')
  out.push(table(['float16 on the wire', 'vs', 'loss rel err', 'grads ||g-g32||/||g32||'], prec.map(r => [r.workload, r.precision!.against, r.precision!.lossRelErr.toExponential(2), r.precision!.gradRelErr.toExponential(2)])))
}
if (latency.length > 0) {
  out.push('')
  out.push('small requests: nt-xent b 64, d 128, msgpack; closed loop with N in flight; ms per request')
  out.push(table(['transport', 'in flight', 'requests', 'p50', 'p99', 'req/s', 'compute p50'], latency.map(l => [l.transport, String(l.inFlight), String(l.requests), ms(l.p50), ms(l.p99), l.perSecond.toFixed(0), ms(l.computeP50)])))
}
if (codec.length > 0) {
  out.push('')
  out.push('tensor codec alone (this process; best of 5): encode = HostTensor -> one msgpack body, decode = body -> Float32Array')
  out.push('GB/s of wire bytes (the encoded tensor) and of float32 bytes (the host side: 2x for float16/bfloat16); convert = the 16-bit conversion alone, into memory already touched')
  out.push(table(['dtype', 'MB on wire', 'encode GB/s', 'decode GB/s', 'f32 enc GB/s', 'f32 dec GB/s', 'encode ms', 'decode ms', 'convert ms enc/dec'], codec.map(c => [
    c.dtype, mb(c.wireBytes), gbs(c.encodeGBs, c.encodeMs), gbs(c.decodeGBs, c.decodeMs), gbs(c.encodeF32GBs, c.encodeMs), gbs(c.decodeF32GBs, c.decodeMs), ms(c.encodeMs), ms(c.decodeMs),
    c.convertEncodeMs === undefined ? '-' : `${ms(c.convertEncodeMs)} / ${ms(c.convertDecodeMs ?? NaN)}`
  ])))
}
if (floors) {
  out.push('')
  out.push(`machine floors (this process, best of 3), ${mb(floors.bytes)} MB: what e2e and the codec are bounded by before any of our code runs`)
  out.push(table(['write fresh memory once', 'write it again', 'bare node:http loopback, up + down'], [[
    `${ms(floors.freshTouchMs)} ms (${(floors.bytes / floors.freshTouchMs / 1e6).toFixed(2)} GB/s)`,
    `${ms(floors.warmTouchMs)} ms (${(floors.bytes / floors.warmTouchMs / 1e6).toFixed(2)} GB/s)`,
    `${ms(floors.httpRoundTripMs)} ms`
  ]]))
}
console.log(out.join('\n'))
if (a.json) {
  fs.writeFileSync(a.json, JSON.stringify({ machine, loadStart: startLoad, loadEnd: endLoad, args: a, torchNote, rows, latency, codec, floors }, null, 2))
  progress(`wrote ${a.json}`)
}
