// Durable files of task instances in the data directory (--data-dir). A checkpoint is
// committed the way a database commits a page (and as the Linux ext4/xfs guidance on
// rename-based replacement asks): write a temp file in the same directory, fsync it,
// rename it over the old one, fsync the directory. A crash at any moment leaves either
// the previous checkpoint or the new one, never a mix; leftover temp files are removed at
// start. Synchronous on purpose: it runs in a worker (or at start) and the step it
// records is acknowledged only after it returns.
import fs from 'node:fs'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { isTaskId } from './ids.ts'

export const CHECKPOINT_SUFFIX = '.safetensors'
export const QUARANTINE_DIR = 'quarantine'
/** temp files: hidden, with the writer's pid and a random part, never a checkpoint name */
export const TEMP_PATTERN = /^\.t_[a-z2-7]{20}\.safetensors\.tmp-\d+-[0-9a-f]{8}$/
const CHECKPOINT_NAME = /^(t_[a-z2-7]{20})\.safetensors$/

/** The checkpoint of instance `id`; refuses anything that is not a server-made id. */
export function checkpointPath (dataDir: string, id: string): string {
  if (!isTaskId(id)) throw new Error(`not a task id: ${JSON.stringify(id).slice(0, 40)}`)
  return path.join(dataDir, id + CHECKPOINT_SUFFIX)
}

/** The instance id a directory entry is the checkpoint of, or undefined. */
export function idOfCheckpoint (name: string): string | undefined {
  return CHECKPOINT_NAME.exec(name)?.[1]
}

export function fsyncDir (dir: string): void {
  const fd = fs.openSync(dir, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/** Atomically replaces `file` with `data` (see the file comment). */
export function writeAtomic (file: string, data: Uint8Array): void {
  const dir = path.dirname(file)
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`)
  let fd: number | undefined
  try {
    fd = fs.openSync(tmp, 'wx', 0o600)
    let at = 0
    while (at < data.length) at += fs.writeSync(fd, data, at, data.length - at)
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fd = undefined
    fs.renameSync(tmp, file)
  } catch (err) {
    if (fd !== undefined) try { fs.closeSync(fd) } catch {}
    try { fs.unlinkSync(tmp) } catch {}
    throw err
  }
  fsyncDir(dir)
}

/** Deletes a checkpoint durably; a missing file is not an error. */
export function removeCheckpoint (file: string): void {
  try {
    fs.unlinkSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  fsyncDir(path.dirname(file))
}

/**
 * Moves a damaged file to <data-dir>/quarantine/ (never deleted: an operator may want it),
 * with a suffix that keeps earlier quarantined copies. Returns the new path.
 */
export function quarantine (dataDir: string, name: string): string {
  const qdir = path.join(dataDir, QUARANTINE_DIR)
  fs.mkdirSync(qdir, { recursive: true, mode: 0o700 })
  const target = path.join(qdir, `${name}.${new Date().toISOString().replace(/[:.]/g, '-')}`)
  fs.renameSync(path.join(dataDir, name), target)
  fsyncDir(qdir)
  fsyncDir(dataDir)
  return target
}
