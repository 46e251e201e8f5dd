// Start-up: every checkpoint in the data directory is read back and checked whole
// (src/store/state-file.ts decodeCheckpoint); a damaged or partial file is moved to
// quarantine/ and reported, never half-loaded, and the server starts with the rest.
// Temp files of interrupted writes were never committed and are removed.
import fs from 'node:fs'
import path from 'node:path'
import { QUARANTINE_DIR, TEMP_PATTERN, idOfCheckpoint, quarantine } from './checkpoint.ts'
import type { InstanceMeta } from './instance.ts'
import { decodeCheckpoint } from './state-file.ts'

export interface RestoredInstance { meta: InstanceMeta, step: number }

export interface RestoreReport {
  instances: RestoredInstance[]
  quarantined: Array<{ file: string, movedTo: string, reason: string }>
  /** temp files of interrupted checkpoint writes, removed */
  removedTemp: string[]
  /** entries that are none of ours, left alone */
  ignored: string[]
}

/**
 * Creates the data directory if needed and restores it. Fails fast, with a message that
 * names the directory and the file system's error, when it cannot be created, read or
 * written (a read-only mount is EROFS even for root): a server that could not checkpoint
 * would acknowledge steps it cannot keep.
 */
export function restoreInstances (dataDir: string): RestoreReport {
  try {
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    fs.accessSync(dataDir, fs.constants.R_OK | fs.constants.W_OK)
  } catch (err) {
    throw new Error(`the data directory ${dataDir} (--data-dir) cannot be used (${(err as Error).message}); task instances need a readable and writable directory`, { cause: err })
  }
  const report: RestoreReport = { instances: [], quarantined: [], removedTemp: [], ignored: [] }
  for (const name of fs.readdirSync(dataDir).sort()) {
    if (name === QUARANTINE_DIR) continue
    if (TEMP_PATTERN.test(name)) {
      fs.unlinkSync(path.join(dataDir, name))
      report.removedTemp.push(name)
      continue
    }
    const id = idOfCheckpoint(name)
    if (id === undefined) {
      report.ignored.push(name)
      continue
    }
    let reason: string
    try {
      const { meta, state } = decodeCheckpoint(fs.readFileSync(path.join(dataDir, name)), id)
      report.instances.push({ meta, step: state.step })
      continue
    } catch (err) {
      reason = (err as Error).message
    }
    report.quarantined.push({ file: name, movedTo: quarantine(dataDir, name), reason })
  }
  return report
}
