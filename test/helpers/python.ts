// Runs Python reference code (torch, safetensors) from the tests. Python is optional: a test
// that needs it asks hasPythonModules() first and, when the answer is no, skips that check
// with the printed reason (t.skip(reason)), never silently.
// The interpreter: $PYTHON, else the first of python3, python on PATH that runs.
import { spawn } from 'node:child_process'

export interface PythonResult {
  /** exited with status 0 */
  ok: boolean
  stdout: Buffer
  stderr: string
  /** why it failed: no interpreter, exit status, signal, timeout */
  reason?: string
}

export interface PythonOptions {
  args?: string[]
  timeoutMs?: number
}

function run (exe: string, argv: string[], input: Buffer | string | undefined, timeoutMs: number): Promise<PythonResult> {
  return new Promise(resolve => {
    const child = spawn(exe, argv, { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', e => {
      clearTimeout(timer)
      resolve({ ok: false, stdout: Buffer.alloc(0), stderr: '', reason: `cannot run ${exe}: ${e.message}` })
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const stderr = Buffer.concat(err).toString('utf8')
      const ok = code === 0 && !timedOut
      const tail = stderr.trim().split('\n').slice(-3).join(' | ')
      const reason = ok
        ? undefined
        : timedOut ? `${exe} timed out after ${timeoutMs} ms` : `${exe} exited with ${signal ?? `status ${code}`}${tail ? `: ${tail}` : ''}`
      resolve({ ok, stdout: Buffer.concat(out), stderr, ...(reason ? { reason } : {}) })
    })
    // the child may exit before reading stdin (a failed import); that is not our error
    child.stdin.on('error', () => {})
    child.stdin.end(input ?? '')
  })
}

let found: Promise<string | undefined> | undefined

/** The interpreter the tests use, or undefined when none runs. */
export function findPython (): Promise<string | undefined> {
  found ??= (async () => {
    const candidates = process.env.PYTHON ? [process.env.PYTHON] : ['python3', 'python']
    for (const exe of candidates) {
      const r = await run(exe, ['-c', 'import sys; print(sys.version_info[0])'], undefined, 30_000)
      if (r.ok && r.stdout.toString().trim() === '3') return exe
    }
    return undefined
  })()
  return found
}

/** Runs `python -c code` with `input` on stdin. */
export async function python (code: string, input?: Buffer | string, opts: PythonOptions = {}): Promise<PythonResult> {
  return runPython(['-c', code, ...(opts.args ?? [])], input, opts.timeoutMs)
}

/** Runs a script file (e.g. scripts/optimizer-reference.py) with `input` on stdin. */
export async function pythonScript (file: string, input?: Buffer | string, opts: PythonOptions = {}): Promise<PythonResult> {
  return runPython([file, ...(opts.args ?? [])], input, opts.timeoutMs)
}

async function runPython (argv: string[], input: Buffer | string | undefined, timeoutMs = 180_000): Promise<PythonResult> {
  const exe = await findPython()
  if (!exe) return { ok: false, stdout: Buffer.alloc(0), stderr: '', reason: process.env.PYTHON ? `$PYTHON (${process.env.PYTHON}) does not run Python 3` : 'no python3 or python on PATH (set $PYTHON to use another)' }
  return run(exe, argv, input, timeoutMs)
}

const checked = new Map<string, Promise<{ ok: boolean, reason?: string }>>()

/** Whether every module imports; otherwise the reason (missing interpreter, the import error). */
export function hasPythonModules (modules: string[]): Promise<{ ok: boolean, reason?: string }> {
  const key = [...modules].sort().join(',')
  let p = checked.get(key)
  if (!p) {
    p = python(modules.map(m => `import ${m}`).join('\n')).then(r =>
      r.ok ? { ok: true } : { ok: false, reason: `python modules ${modules.join(', ')} unavailable: ${r.reason}` })
    checked.set(key, p)
  }
  return p
}
