// kill -9 in a loop during checkpoint writes (issue 7 "Faults"):
//   npm run crashloop -- --rounds 100 [--hidden 512] [--seed S] [--random-every 4]
// One data directory, one cpc instance large enough that its checkpoint takes measurable
// time to write (hidden 512: ~1.3 M parameters, ~16 MB with Adam's two moments). Each round
// starts the real entry (server/start.ts), checks what it restored, takes updating steps
// (POST /v1/tasks/{id}/loss, each acknowledged only after its checkpoint is on disk:
// src/store/held.ts) and SIGKILLs it. Most rounds kill the moment the checkpoint writer's
// temp file appears in the data directory (fs.watch; src/store/checkpoint.ts writeAtomic
// names it TEMP_PATTERN), so the kill lands while the file is being written, fsynced or
// renamed; every `--random-every`-th round kills at a random delay instead.
//
// What each restart must show (src/store/restore.ts):
//  - the instance's step is the last acknowledged one, or the one in flight (its checkpoint
//    committed but its answer lost); when the killed write's temp file was still there after
//    the kill, the rename never ran, so it must be the acknowledged one exactly;
//  - its parameters and optimizer state (GET /v1/tasks/{id}/state?optimizer=true) equal, bit
//    for bit, what the server sent after that step was acknowledged, or (one in flight) the
//    state replayed from there on a fresh instance;
//  - no file was quarantined (the log says "quarantined":0, no quarantine/ directory), the
//    only instance listed is ours (a temp file never becomes an instance), no temp file is left
//    in the data directory once the server is up, and the instance trains on.
// The same rounds, bounded, run in npm test (test/server/faults-checkpoint.test.ts).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { TEMP_PATTERN, QUARANTINE_DIR } from '../src/store/checkpoint.ts'
import { Prng } from '../src/tasks/prng.ts'
import { startRealServer, type RealServer } from '../test/helpers/server.ts'

export interface CrashLoopOptions {
  rounds: number
  /** cpc hidden_channels: the checkpoint is ~5·h²·12 bytes with Adam */
  hidden?: number
  seed?: number
  /** every n-th round kills at a random delay instead of at a temp file (0: never) */
  randomEvery?: number
  dataDir?: string
  log?: (line: string) => void
}

export interface RoundRecord {
  round: number
  how: 'mid-write' | 'random-delay'
  /** steps acknowledged before the kill (the instance's step when the round began excluded) */
  stepsAcked: number
  ackedStep: number
  /** the killed write's temp file was still in the directory after the kill (the rename never ran) */
  tempLeft: boolean
  /** what the next start restored */
  restoredStep: number
  /** restored = the in-flight step (its checkpoint committed, its answer lost) */
  inFlightRestored: boolean
  /** the next start's log said it removed temp files of interrupted writes */
  tempRemovedAtStart: number
}

export interface CrashLoopResult {
  rounds: RoundRecord[]
  problems: string[]
  checkpointBytes: number
  finalStep: number
  ms: number
}

const OPTIMIZER = { name: 'adam', lr: 0.001 }
const OCTET = { 'content-type': 'application/octet-stream' }

function zOf (k: number, channels: number): object {
  const n = 2 * channels * 4 * 4
  return { dtype: 'float32', shape: [2, channels, 4, 4], data: Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 0.37 + k * 1.3) * 0.8)) }
}

async function json (url: string, init: RequestInit = {}): Promise<{ status: number, body: any }> {
  const res = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...(init.headers ?? {}) } })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
}

async function stateOf (url: string, id: string): Promise<Buffer> {
  const res = await fetch(`${url}/v1/tasks/${id}/state?optimizer=true`)
  if (res.status !== 200) throw new Error(`GET state: ${res.status} ${await res.text()}`)
  return Buffer.from(await res.arrayBuffer())
}

const temps = (dir: string): string[] => fs.readdirSync(dir).filter(f => TEMP_PATTERN.test(f))

/** Keeps child processes to kill if the loop is left early (the test's teardown or the script's exit). */
class Children {
  private readonly fns: Array<() => unknown> = []
  teardown (fn: () => unknown): void { this.fns.push(fn) }
  cleanup (): void { for (const fn of this.fns.splice(0)) fn() }
}

export async function runCrashLoop (opts: CrashLoopOptions): Promise<CrashLoopResult> {
  const hidden = opts.hidden ?? 512
  const channels = 8
  const config = { num_input_channels: channels, target_dim: 4, hidden_channels: hidden, num_blocks: 1 }
  const prng = new Prng(opts.seed ?? 20261201)
  const log = opts.log ?? (() => {})
  const own = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-crashloop-'))
  const children = new Children()
  const problems: string[] = []
  const rounds: RoundRecord[] = []
  const t0 = performance.now()
  const problem = (round: number, what: string): void => { problems.push(`round ${round}: ${what}`); log(`PROBLEM round ${round}: ${what}`) }
  const start = (): Promise<RealServer> => startRealServer(children, ['--data-dir', dataDir])

  let server = await start()
  const made = await json(`${server.url}/v1/tasks`, { method: 'POST', body: JSON.stringify({ kind: 'cpc', config, seed: 11, optimizer: OPTIMIZER }) })
  if (made.status !== 201) throw new Error(`create: ${made.status} ${JSON.stringify(made.body)}`)
  const id: string = made.body.id
  const checkpointBytes = fs.statSync(path.join(dataDir, `${id}.safetensors`)).size
  log(`instance ${id}: cpc hidden ${hidden}, checkpoint ${(checkpointBytes / 2 ** 20).toFixed(1)} MiB, data dir ${dataDir}`)

  /** states received after acknowledged steps, by step */
  let recorded = new Map<number, Buffer>([[0, await stateOf(server.url, id)]])
  let acked = 0
  let finalStep = 0

  /** The state at `toStep`, replayed from `from` (at step `fromStep`) on a fresh instance. */
  const replay = async (url: string, from: Buffer, fromStep: number, toStep: number): Promise<Buffer> => {
    const fresh = await json(`${url}/v1/tasks`, { method: 'POST', body: JSON.stringify({ kind: 'cpc', config, optimizer: OPTIMIZER }) })
    const rid = fresh.body.id
    const put = await fetch(`${url}/v1/tasks/${rid}/state`, { method: 'PUT', headers: OCTET, body: new Uint8Array(from) })
    if (put.status !== 200) throw new Error(`replay import: ${put.status} ${await put.text()}`)
    for (let k = fromStep; k < toStep; k++) {
      const s = await json(`${url}/v1/tasks/${rid}/loss`, { method: 'POST', body: JSON.stringify({ inputs: { z: zOf(k, channels) }, options: { gradients: false } }) })
      if (s.status !== 200) throw new Error(`replay step: ${s.status}`)
    }
    const out = await stateOf(url, rid)
    const del = await fetch(`${url}/v1/tasks/${rid}`, { method: 'DELETE' })
    if (del.status !== 204) throw new Error(`replay delete: ${del.status}`)
    return out
  }

  try {
    for (let round = 1; round <= opts.rounds; round++) {
      // ---- the kill ----
      const how: RoundRecord['how'] = opts.randomEvery && round % opts.randomEvery === 0 ? 'random-delay' : 'mid-write'
      const victim = server
      const atWrite = 1 + prng.int(3) // which checkpoint write of this round is killed
      let writes = 0
      let killed = false
      const kill = (): void => { if (!killed) { killed = true; victim.child.kill('SIGKILL') } }
      const seen = new Set<string>()
      const watcher = fs.watch(dataDir, (_event, name) => {
        if (how !== 'mid-write' || !name || !TEMP_PATTERN.test(name) || seen.has(name)) return
        seen.add(name)
        if (++writes === atWrite) kill()
      })
      // random-delay rounds: anywhere in the first few steps (a step, an export, or between)
      const timer = how === 'random-delay' ? setTimeout(kill, 20 + prng.int(1500)) : undefined
      const ackedAtStart = acked
      try {
        while (!killed) {
          const r = await json(`${victim.url}/v1/tasks/${id}/loss`, { method: 'POST', body: JSON.stringify({ inputs: { z: zOf(acked, channels) }, options: { gradients: false } }) })
          if (r.status !== 200) { problem(round, `step ${acked + 1} answered ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`); kill(); break }
          if (r.body.step !== acked + 1) problem(round, `step answered ${r.body.step}, expected ${acked + 1}`)
          acked = r.body.step
          recorded.set(acked, await stateOf(victim.url, id))
        }
      } catch (err) {
        if (!killed) problem(round, `a call failed before the kill: ${(err as Error).message}`)
      }
      clearTimeout(timer)
      kill()
      await victim.exited
      watcher.close()
      const tempLeft = temps(dataDir).length > 0

      // ---- the restart ----
      try {
        server = await start()
      } catch (err) {
        // a server that does not come back is the worst outcome: stop here and say why
        problem(round, `the restart failed: ${(err as Error).message.slice(0, 2000)}`)
        return { rounds, problems, checkpointBytes, finalStep, ms: Math.round(performance.now() - t0) }
      }
      const startLog = server.log()
      const restoredLine = /"restored":(\d+),"quarantined":(\d+)/.exec(startLog)
      if (!restoredLine) problem(round, 'no "task instances restored" log line')
      else if (restoredLine[1] !== '1' || restoredLine[2] !== '0') problem(round, `restored ${restoredLine[1]}, quarantined ${restoredLine[2]} (expected 1 and 0)`)
      if (/damaged task checkpoint/.test(startLog)) problem(round, 'a checkpoint was reported damaged')
      if (fs.existsSync(path.join(dataDir, QUARANTINE_DIR))) problem(round, 'a quarantine directory exists')
      const removed = /"files":\[([^\]]*)\][^\n]*removed temp files/.exec(startLog)
      const tempRemovedAtStart = removed ? removed[1].split(',').length : 0
      if (tempLeft && tempRemovedAtStart === 0) problem(round, 'a temp file was left by the kill but the start did not report removing it')
      if (temps(dataDir).length) problem(round, `temp files left after the start: ${temps(dataDir).join(', ')}`)
      const list = await json(`${server.url}/v1/tasks`)
      const ids = (list.body?.tasks ?? []).map((x: any) => x.id)
      if (ids.length !== 1 || ids[0] !== id) problem(round, `instances listed: ${JSON.stringify(ids)}`)
      const info = await json(`${server.url}/v1/tasks/${id}`)
      const restored: number = info.body?.step
      const inFlight = restored === acked + 1
      if (restored !== acked && !inFlight) problem(round, `restored step ${restored}, acknowledged ${acked}`)
      if (tempLeft && restored !== acked) problem(round, `the killed write never committed (its temp file was left) yet step ${restored} was restored, acknowledged ${acked}`)
      const got = await stateOf(server.url, id)
      // the state received after the restored step, or replayed from the last one received
      // (the in-flight step; or an acknowledged step whose export the kill cut off)
      let replayedFrom: number | undefined
      if (restored === acked || inFlight) {
        const base = Math.max(...[...recorded.keys()].filter(k => k <= restored))
        if (base !== restored) replayedFrom = base
        const expected = base === restored ? recorded.get(base)! : await replay(server.url, recorded.get(base)!, base, restored)
        if (!got.equals(expected)) problem(round, `the state at step ${restored} differs from the one ${base === restored ? 'received after it was acknowledged' : `replayed from step ${base}`}`)
      }
      rounds.push({ round, how, stepsAcked: acked - ackedAtStart, ackedStep: acked, tempLeft, restoredStep: restored, inFlightRestored: inFlight, tempRemovedAtStart })
      log(`round ${round} ${how}: ${acked - ackedAtStart} step(s) acked (step ${acked}), killed ${tempLeft ? 'with the temp file on disk (mid-write)' : 'with no temp file left'}, restored step ${restored}${inFlight ? ' (the in-flight one)' : ''}${replayedFrom !== undefined ? `, checked against a replay from step ${replayedFrom}` : ''}`)
      // the restored state is the truth from here on
      acked = restored
      recorded = new Map([[acked, got]])
    }
    // the last server trains on and stops cleanly
    const r = await json(`${server.url}/v1/tasks/${id}/loss`, { method: 'POST', body: JSON.stringify({ inputs: { z: zOf(acked, channels) }, options: { gradients: false } }) })
    if (r.status !== 200 || r.body.step !== acked + 1) problem(opts.rounds, `the last server's step: ${r.status} step ${r.body?.step}`)
    finalStep = r.body?.step
    server.child.kill('SIGTERM')
    const code = await server.exited
    if (code !== 0) problem(opts.rounds, `the last server exited ${code} on SIGTERM`)
  } catch (err) {
    problem(rounds.length + 1, `the loop stopped: ${(err as Error).stack ?? String(err)}`)
  } finally {
    children.cleanup()
    if (own) fs.rmSync(dataDir, { recursive: true, force: true })
  }
  return { rounds, problems, checkpointBytes, finalStep, ms: Math.round(performance.now() - t0) }
}

export function summarize (r: CrashLoopResult): string {
  const n = r.rounds.length
  const mid = r.rounds.filter(x => x.how === 'mid-write')
  const lines = [
    `${n} rounds in ${(r.ms / 1000).toFixed(1)} s, checkpoint ${(r.checkpointBytes / 2 ** 20).toFixed(1)} MiB, final step ${r.finalStep}`,
    `  kills at the temp file: ${mid.length}; of them the temp file was still there after the kill (mid-write): ${mid.filter(x => x.tempLeft).length}; the write had committed: ${mid.filter(x => !x.tempLeft).length}`,
    `  kills at a random delay: ${n - mid.length}; mid-write: ${r.rounds.filter(x => x.how === 'random-delay' && x.tempLeft).length}`,
    `  restored the acknowledged step: ${r.rounds.filter(x => !x.inFlightRestored).length}; the in-flight step (committed, answer lost): ${r.rounds.filter(x => x.inFlightRestored).length}`,
    `  temp files removed at start: ${r.rounds.reduce((a, x) => a + x.tempRemovedAtStart, 0)}; steps acknowledged in all: ${r.rounds.reduce((a, x) => a + x.stepsAcked, 0)}`,
    `  problems: ${r.problems.length}`
  ]
  return lines.join('\n')
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '100' },
      hidden: { type: 'string', default: '512' },
      seed: { type: 'string' },
      'random-every': { type: 'string', default: '4' }
    }
  })
  const result = await runCrashLoop({
    rounds: Number(values.rounds),
    hidden: Number(values.hidden),
    ...(values.seed !== undefined ? { seed: Number(values.seed) } : {}),
    randomEvery: Number(values['random-every']),
    log: line => console.log(line)
  })
  console.log('\n' + summarize(result))
  for (const p of result.problems) console.log('PROBLEM ' + p)
  console.log(result.problems.length === 0 ? 'OK' : 'FAILED')
  process.exit(result.problems.length === 0 ? 0 : 1)
}
