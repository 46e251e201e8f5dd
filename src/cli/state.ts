// `ssl-loss-server state export|import`: a task instance's state as a safetensors file,
// through the TypeScript client (src/client). An export is written to a temporary file and
// renamed, so a failed or interrupted export never leaves a truncated FILE behind.
import fs from 'node:fs'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { LossClient, LossClientError } from '../client/index.ts'
import { EXIT, wantsHelp, type CliIo } from './io.ts'
import { STATE_USAGE } from './usage.ts'

const COMMON = {
  url: { type: 'string' },
  task: { type: 'string' },
  'api-key': { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const

const OPTIONS = {
  export: { ...COMMON, optimizer: { type: 'boolean' }, output: { type: 'string', short: 'o' } },
  import: { ...COMMON, input: { type: 'string', short: 'i' } }
} as const

function usageError (io: CliIo, message: string): number {
  io.stderr(`ssl-loss-server state: ${message}\n${STATE_USAGE}\n`)
  return EXIT.usage
}

export async function stateCommand (argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '--help' || sub === '-h') {
    if (sub === undefined) return usageError(io, 'a subcommand is required: export or import')
    io.stdout(STATE_USAGE + '\n')
    return EXIT.ok
  }
  if (sub !== 'export' && sub !== 'import') return usageError(io, `unknown subcommand '${sub}' (export or import)`)
  if (wantsHelp(rest)) { io.stdout(STATE_USAGE + '\n'); return EXIT.ok }
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: rest, options: OPTIONS[sub], strict: true, allowPositionals: false }).values as typeof values
  } catch (err) {
    return usageError(io, (err as Error).message)
  }
  const url = values.url as string | undefined
  const task = values.task as string | undefined
  const file = (sub === 'export' ? values.output : values.input) as string | undefined
  if (url === undefined) return usageError(io, `${sub}: --url is required`)
  if (!/^https?:\/\/[^/]/.test(url)) return usageError(io, `${sub}: --url must be http(s)://host:port, got '${url}'`)
  if (task === undefined || task === '') return usageError(io, `${sub}: --task is required`)
  if (file === undefined || file === '') return usageError(io, `${sub}: ${sub === 'export' ? '-o FILE' : '-i FILE'} is required`)
  const apiKey = values['api-key'] as string | undefined
  const client = new LossClient({ url, ...(apiKey !== undefined ? { apiKey } : {}) })
  try {
    if (sub === 'export') {
      const bytes = values.optimizer === true ? await client.exportState(task, { optimizer: true }) : await client.exportState(task)
      writeOut(file, bytes)
      io.stderr(`exported task ${task}${values.optimizer === true ? ' with its optimizer state' : ''}: ${bytes.byteLength} bytes to ${file === '-' ? 'stdout' : file}\n`)
    } else {
      const bytes = readIn(file)
      const info = await client.importState(task, bytes)
      io.stdout(JSON.stringify(info ?? { id: task }) + '\n')
      io.stderr(`imported ${bytes.byteLength} bytes from ${file === '-' ? 'stdin' : file} into task ${task}\n`)
    }
    return EXIT.ok
  } catch (err) {
    if (err instanceof LossClientError) {
      io.stderr(`ssl-loss-server state ${sub}: ${err.code}${err.status ? ` (HTTP ${err.status})` : ''}: ${err.message}\n`)
      return EXIT.failed
    }
    if ((err as NodeJS.ErrnoException).code !== undefined && (err as NodeJS.ErrnoException).syscall !== undefined) {
      io.stderr(`ssl-loss-server state ${sub}: ${(err as Error).message}\n`)
      return EXIT.failed
    }
    throw err
  }
}

function writeOut (file: string, bytes: Uint8Array): void {
  if (file === '-') { process.stdout.write(bytes); return } // flushed before the process exits (exitCode, not exit())
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.${process.pid}.tmp`)
  try {
    fs.writeFileSync(tmp, bytes)
    fs.renameSync(tmp, file)
  } catch (err) {
    fs.rmSync(tmp, { force: true })
    throw err
  }
}

function readIn (file: string): Uint8Array {
  return file === '-' ? fs.readFileSync(0) : fs.readFileSync(file)
}
