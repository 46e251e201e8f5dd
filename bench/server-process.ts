// The server under test as a child process (the real entry, server/start.ts, as `npm start`
// runs it), and its memory from /proc: VmHWM is the peak resident set; writing 5 to
// /proc/<pid>/clear_refs resets it (Linux >= 4.0, proc(5)), so each workload gets its own peak.
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

export interface ServerProcess {
  url: string
  pid: number
  child: ChildProcess
  stop: () => Promise<void>
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

export async function startServer (opts: { backend: string, workers: number, extraArgs?: string[], log: (s: string) => void }): Promise<ServerProcess> {
  const port = await freePort()
  const args = [
    '--import', 'tsx', path.join(ROOT, 'server/start.ts'),
    '--host', '127.0.0.1', '--port', String(port), '--backend', opts.backend, '--workers', String(opts.workers),
    // room for Bolts-size requests (amdim is 154 MB of input) and for 64 requests in flight
    '--body-limit', '1GiB', '--ws-max-payload', '1GiB', '--queue-size', '256',
    '--max-in-flight-per-connection', '64', '--request-timeout', '600', '--log-level', 'warn',
    ...(opts.extraArgs ?? [])
  ]
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] })
  const url = `http://127.0.0.1:${port}`
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  let dead = false
  void exited.then(() => { dead = true })
  const t0 = Date.now()
  while (true) {
    if (dead) throw new Error(`the server exited (code ${child.exitCode}) before it was ready: node ${args.join(' ')}`)
    try {
      const res = await fetch(`${url}/health/ready`)
      await res.arrayBuffer()
      if (res.ok) break
    } catch {}
    if (Date.now() - t0 > 180_000) {
      child.kill('SIGKILL')
      throw new Error('the server was not ready within 180 s')
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  opts.log(`server ready on ${url} (pid ${child.pid}, ${opts.backend}, ${opts.workers} worker(s)) in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  return {
    url,
    pid: child.pid!,
    child,
    stop: async () => {
      if (!dead) child.kill('SIGTERM')
      const timer = setTimeout(() => { if (!dead) child.kill('SIGKILL') }, 10_000)
      await exited
      clearTimeout(timer)
    }
  }
}

function statusField (pid: number, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

export const rssBytes = (pid: number): number | undefined => statusField(pid, 'VmRSS')

/** Resets the peak (VmHWM) to the current RSS; false where the kernel does not allow it. */
export function resetPeak (pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5')
    return true
  } catch {
    return false
  }
}

/**
 * Tracks the peak RSS of `pid` over a stretch of work: VmHWM after a reset where possible,
 * else the largest VmRSS seen by sampling every 10 ms.
 */
export function peakTracker (pid: number): { stop: () => number | undefined } {
  const exact = resetPeak(pid)
  let max = rssBytes(pid) ?? 0
  const timer = exact ? undefined : setInterval(() => { max = Math.max(max, rssBytes(pid) ?? 0) }, 10)
  return {
    stop: () => {
      if (timer) clearInterval(timer)
      return exact ? statusField(pid, 'VmHWM') : max || undefined
    }
  }
}
