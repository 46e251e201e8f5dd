// A real full disk and a real read-only data directory (docs/task-instances.md "Durability";
// checkpoint-failures.test.ts keeps the EISDIR stand-in, which needs no privileges).
//
// How: the real entry runs in a private mount namespace (unshare -m) on a 2 MiB tmpfs
// mounted over its data directory, so the rest of the machine never sees the mount and it
// goes away with the process. The test reaches that file system through
// /proc/<pid>/root/<data-dir> (the server's view of the tree): it reads checkpoints there and
// fills the disk with a file until write(2) says ENOSPC; `nsenter -t <pid> -m mount -o
// remount,ro` flips it read-only (EROFS binds root too). Where unshare or mount are not
// permitted (no CAP_SYS_ADMIN, a container without it) the tests are skipped with a NOTE.
//
// What must hold on a broken disk: a step, a creation and an import answer 503 `unavailable`
// naming the file system's error; nothing is applied (the checkpoint file is byte-identical
// and the exported state bit-identical to before); no temp file is left; stateless kinds keep
// serving; and once the disk is healed the same request succeeds and is durable.
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { TEMP_PATTERN } from '../../src/store/checkpoint.ts'
import { readSafetensors } from '../../src/store/safetensors.ts'
import { loadFixtures } from '../helpers/fixtures.ts'
import { whenReady, type RealServer } from '../helpers/server.ts'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const CONFIG = { num_input_channels: 3, target_dim: 4, hidden_channels: 16, num_blocks: 1 }
const OPTIMIZER = { name: 'adam', lr: 0.01 }
const OCTET = { 'content-type': 'application/octet-stream' }

function tmpDir (t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-disk-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Why a private tmpfs cannot be mounted and remounted here, or undefined when it can. */
function namespaceUnavailable (): string | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-disk-probe-'))
  try {
    const r = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs "$1" && mount -o remount,ro "$1" && mount -o remount,rw "$1"', 'sh', dir], { encoding: 'utf8' })
    if (r.error) return `unshare cannot run (${r.error.message})`
    if (r.status !== 0) return `unshare -m / mount tmpfs is not permitted here (exit ${r.status}: ${r.stderr.trim()})`
    return undefined
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

interface NsServer extends RealServer {
  /** a path inside the server's data directory, as the server sees it */
  inside: (name?: string) => string
  /** remounts the server's data directory */
  remount: (mode: 'ro' | 'rw') => void
}

/** The real entry in its own mount namespace with a tmpfs of `mountOptions` on `dataDir`. */
async function startOnTmpfs (t: Test, dataDir: string, mountOptions = 'size=2m'): Promise<NsServer> {
  const script = 'mount -t tmpfs -o "$1" tmpfs "$2" && exec "$3" --import tsx server/start.ts --data-dir "$2" --backend wasm --workers 1 --port 0 --log-level info'
  const child = spawn('unshare', ['-m', 'sh', '-c', script, 'sh', mountOptions, dataDir, process.execPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  const server = await whenReady(t, child)
  // unshare and sh exec, so the child's pid is the server's
  const inside = (name = ''): string => path.join(`/proc/${child.pid}/root`, dataDir, name)
  const remount = (mode: 'ro' | 'rw'): void => {
    const r = spawnSync('nsenter', ['-t', String(child.pid), '-m', 'mount', '-o', `remount,${mode}`, dataDir], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`remount ${mode}: ${r.stderr}`)
  }
  return { ...server, inside, remount }
}

async function call (url: string, init: RequestInit = {}): Promise<{ status: number, body: any, bytes: Buffer, headers: Headers }> {
  const res = await fetch(url, { ...init, headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(init.headers ?? {}) } })
  const bytes = Buffer.from(await res.arrayBuffer())
  let body: any
  try { body = JSON.parse(bytes.toString('utf8')) } catch { body = undefined }
  return { status: res.status, body, bytes, headers: res.headers }
}

function zOf (k: number): object {
  return { dtype: 'float32', shape: [2, 3, 4, 4], data: Array.from({ length: 96 }, (_, i) => Math.fround(Math.sin(i * 0.7 + k) * 0.8)) }
}
const stepBody = (k: number): string => JSON.stringify({ inputs: { z: zOf(k) }, options: { gradients: false } })
const createBody = (seed: number): string => JSON.stringify({ kind: 'cpc', config: CONFIG, seed, optimizer: OPTIMIZER })

/** Fills the file system under `file` until write(2) fails; returns the error code. */
function fill (file: string): string {
  const fd = fs.openSync(file, 'w')
  const chunk = Buffer.alloc(64 * 1024, 0x5a)
  try {
    for (;;) fs.writeSync(fd, chunk)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err)
  } finally {
    fs.closeSync(fd)
  }
}

const stepOnDisk = (file: string): number => Number(readSafetensors(fs.readFileSync(file)).metadata.step)

/** Everything that must hold while the disk is broken; `errno` is the error the answers must name. */
async function checkBroken (t: Test, s: NsServer, id: string, errno: RegExp, before: { file: Buffer, state: Buffer, names: string[] }): Promise<void> {
  const ckpt = s.inside(`${id}.safetensors`)
  const step = await call(`${s.url}/v1/tasks/${id}/loss`, { method: 'POST', body: stepBody(2) })
  t.equal(step.status, 503, `the step is refused: ${JSON.stringify(step.body)}`)
  t.equal(step.body?.error?.code, 'unavailable')
  t.match(step.body?.error?.message, /checkpoint failed while checkpointing step 3/, 'says what failed')
  t.match(step.body?.error?.message, errno, 'names the file system error')
  t.match(step.body?.error?.message, /stays at its last checkpoint/)
  t.ok(step.headers.get('retry-after'), 'retryable: Retry-After')
  t.ok(fs.readFileSync(ckpt).equals(before.file), 'the checkpoint on disk is byte-identical (step 2)')
  t.same(fs.readdirSync(s.inside()).filter(f => TEMP_PATTERN.test(f)), [], 'no temp file left')
  t.equal((await call(`${s.url}/v1/tasks/${id}`)).body?.step, 2, 'the instance says step 2')
  const state = await call(`${s.url}/v1/tasks/${id}/state?optimizer=true`)
  t.equal(state.status, 200, 'its state can still be read')
  t.ok(state.bytes.equals(before.state), 'parameters and optimizer state in memory are the step-2 ones, bit for bit')

  const made = await call(`${s.url}/v1/tasks`, { method: 'POST', body: createBody(8) })
  t.equal(made.status, 503, `creating an instance is refused: ${JSON.stringify(made.body)}`)
  t.match(made.body?.error?.message, /checkpoint failed while creating the instance/)
  t.match(made.body?.error?.message, errno)
  const list = await call(`${s.url}/v1/tasks`)
  t.same(list.body?.tasks?.map((x: any) => x.id), [id], 'no half-created instance is listed')

  const put = await fetch(`${s.url}/v1/tasks/${id}/state`, { method: 'PUT', headers: OCTET, body: new Uint8Array(before.state) })
  const putBody = await put.json() as any
  t.equal(put.status, 503, `an import is refused: ${JSON.stringify(putBody)}`)
  t.match(putBody?.error?.message, errno)
  t.ok(fs.readFileSync(ckpt).equals(before.file), 'the checkpoint is still byte-identical')
  t.same(fs.readdirSync(s.inside()).sort(), before.names, 'no new file in the data directory')

  const fixture = loadFixtures().find(f => f.kind === 'nt-xent')!
  const stateless = await call(`${s.url}/v1/loss/nt-xent`, { method: 'POST', body: JSON.stringify(fixture.request) })
  t.equal(stateless.status, 200, 'stateless nt-xent keeps serving')
  t.ok(Number.isFinite(stateless.body?.loss))
  t.equal((await call(`${s.url}/health/ready`)).status, 200, 'and the server is ready')
}

/** After healing: the same requests succeed and are on disk. */
async function checkHealed (t: Test, s: NsServer, id: string): Promise<void> {
  const step = await call(`${s.url}/v1/tasks/${id}/loss`, { method: 'POST', body: stepBody(2) })
  t.equal(step.status, 200, 'the same step succeeds once the disk is healed')
  t.equal(step.body?.step, 3)
  t.equal(stepOnDisk(s.inside(`${id}.safetensors`)), 3, 'and step 3 is durable')
  const made = await call(`${s.url}/v1/tasks`, { method: 'POST', body: createBody(8) })
  t.equal(made.status, 201, 'creating an instance succeeds')
  t.ok(fs.existsSync(s.inside(`${made.body?.id}.safetensors`)))
  t.same(fs.readdirSync(s.inside()).filter(f => TEMP_PATTERN.test(f)), [])
}

async function trainedInstance (t: Test, s: NsServer): Promise<{ id: string, before: { file: Buffer, state: Buffer, names: string[] } }> {
  const made = await call(`${s.url}/v1/tasks`, { method: 'POST', body: createBody(5) })
  t.equal(made.status, 201)
  const id = made.body.id
  for (let k = 0; k < 2; k++) t.equal((await call(`${s.url}/v1/tasks/${id}/loss`, { method: 'POST', body: stepBody(k) })).body?.step, k + 1)
  const file = fs.readFileSync(s.inside(`${id}.safetensors`))
  t.equal(stepOnDisk(s.inside(`${id}.safetensors`)), 2, 'step 2 is durable')
  const state = (await call(`${s.url}/v1/tasks/${id}/state?optimizer=true`)).bytes
  return { id, before: { file, state, names: [] } }
}

const unavailable = namespaceUnavailable()
if (unavailable) {
  const note = `NOTE: the full-disk and read-only data directory tests are SKIPPED: ${unavailable}. They need root with CAP_SYS_ADMIN (unshare -m, mount -t tmpfs); test/server/checkpoint-failures.test.ts still covers a failing checkpoint with EISDIR.`
  console.error(note)
  t.comment(note)
}

t.test('a full disk (ENOSPC on a 2 MiB tmpfs)', { skip: unavailable ? `NOTE: ${unavailable}` : false }, async t => {
  const dataDir = tmpDir(t)
  const s = await startOnTmpfs(t, dataDir)
  const { id, before } = await trainedInstance(t, s)
  t.equal(fill(s.inside('filler')), 'ENOSPC', 'the disk is full: write(2) says ENOSPC')
  before.names = fs.readdirSync(s.inside()).sort()
  await checkBroken(t, s, id, /ENOSPC/, before)

  fs.unlinkSync(s.inside('filler'))
  await checkHealed(t, s, id)
  s.child.kill('SIGTERM')
  t.equal(await s.exited, 0, 'stops cleanly')
})

t.test('a data directory that turns read-only while the server runs (EROFS)', { skip: unavailable ? `NOTE: ${unavailable}` : false }, async t => {
  const dataDir = tmpDir(t)
  const s = await startOnTmpfs(t, dataDir)
  const { id, before } = await trainedInstance(t, s)
  before.names = fs.readdirSync(s.inside()).sort()
  s.remount('ro')
  t.throws(() => fs.writeFileSync(s.inside('probe'), 'x'), { code: 'EROFS' }, 'the data directory is read-only')
  await checkBroken(t, s, id, /EROFS/, before)

  const del = await call(`${s.url}/v1/tasks/${id}`, { method: 'DELETE' })
  t.equal(del.status, 503, `a delete that cannot remove the checkpoint is refused: ${JSON.stringify(del.body)}`)
  t.match(del.body?.error?.message, /EROFS/)
  t.equal((await call(`${s.url}/v1/tasks/${id}`)).body?.step, 2, 'the instance is still there')
  t.ok((await call(`${s.url}/v1/tasks/${id}/state?optimizer=true`)).bytes.equals(before.state), 'with its state')

  s.remount('rw')
  await checkHealed(t, s, id)
  const del2 = await call(`${s.url}/v1/tasks/${id}`, { method: 'DELETE' })
  t.equal(del2.status, 204, 'and a delete succeeds')
  t.notOk(fs.existsSync(s.inside(`${id}.safetensors`)))
  s.child.kill('SIGTERM')
  t.equal(await s.exited, 0, 'stops cleanly')
})

t.test('starting on a read-only data directory fails fast with a message naming it', { skip: unavailable ? `NOTE: ${unavailable}` : false }, async t => {
  const dataDir = tmpDir(t)
  const script = 'mount -t tmpfs -o size=1m,ro tmpfs "$1" && exec "$2" --import tsx server/start.ts --data-dir "$1" --backend wasm --workers 1 --port 0'
  const child = spawn('unshare', ['-m', 'sh', '-c', script, 'sh', dataDir, process.execPath], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let log = ''
  child.stdout!.on('data', d => { log += d })
  child.stderr!.on('data', d => { log += d })
  const code = await new Promise<number | null>(resolve => child.on('exit', c => resolve(c)))
  t.not(code, 0, `exits non-zero (${code})`)
  t.match(log, new RegExp(`the data directory ${dataDir} \\(--data-dir\\) cannot be used \\(EROFS: read-only file system`), 'names the directory and EROFS')
  t.notMatch(log, /Server listening/, 'never listened')
})
