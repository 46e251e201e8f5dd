// Configuration: command-line flags over environment variables over defaults, parsed once
// with zod and frozen (STYLE.md principle 4). The only file that reads process.env.
import fs from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { BACKENDS } from './compute/backend.ts'

const MiB = 1024 * 1024

/** Flag name -> environment variable (the env name of --queue-size is QUEUE_SIZE). */
const FLAGS = {
  host: 'HOST',
  port: 'PORT',
  backend: 'BACKEND',
  workers: 'WORKERS',
  'queue-size': 'QUEUE_SIZE',
  'body-limit': 'BODY_LIMIT',
  'max-elements': 'MAX_ELEMENTS',
  'request-timeout': 'REQUEST_TIMEOUT',
  'max-in-flight-per-connection': 'MAX_IN_FLIGHT_PER_CONNECTION',
  'ws-max-payload': 'WS_MAX_PAYLOAD',
  'log-level': 'LOG_LEVEL'
} as const
// Room for the next issue (task instances): 'data-dir' (DATA_DIR), 'api-keys' (API_KEYS).

const int = (min: number, max = Number.MAX_SAFE_INTEGER): z.ZodCoercedNumber => z.coerce.number().int().min(min).max(max)

/** Byte sizes: a plain integer or a number with a unit, e.g. "256MiB", "1gb", "64k". */
const bytes = z.union([z.number(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$/i.exec(v)
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `'${v}' is not a byte size (examples: 1048576, 64KiB, 256MiB, 1GiB)` })
    return z.NEVER
  }
  const unit = (m[2] ?? 'b').toLowerCase()[0]
  const scale = unit === 'k' ? 1024 : unit === 'm' ? MiB : unit === 'g' ? 1024 * MiB : 1
  return Math.floor(Number(m[1]) * scale)
}).pipe(z.number().int().min(1))

export const configSchema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: int(0, 65535).default(8080),
  backend: z.enum(BACKENDS).default('auto'),
  /** worker threads (or processes, tensorflow-gpu); absent: one per core, or one per visible GPU */
  workers: int(1, 1024).optional(),
  /** CUDA device ids this process may use (CUDA_VISIBLE_DEVICES, else /dev/nvidiaN) */
  gpuDevices: z.array(z.string()).default([]),
  cores: int(1).default(Math.max(1, os.availableParallelism())),
  /** requests waiting for a worker; one more gets 429 overloaded */
  queueSize: int(0).default(64),
  bodyLimit: bytes.default(256 * MiB),
  /** elements per tensor; checked before anything is allocated */
  maxElements: int(1).default(2 ** 28),
  /** per request, queue wait plus compute */
  requestTimeoutMs: int(1).default(120_000),
  maxInFlightPerConnection: int(1).default(16),
  wsMaxPayload: bytes.default(256 * MiB),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
}).strict()

export type Config = Readonly<z.output<typeof configSchema>>
export type ConfigInput = z.input<typeof configSchema>

const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())

/** Seconds on the command line (--request-timeout 120), milliseconds in the config. */
function toConfigKey (flag: string): string {
  return flag === 'request-timeout' ? 'requestTimeoutMs' : camel(flag)
}

function fromText (flag: string, text: string): unknown {
  if (flag !== 'request-timeout') return text
  const seconds = Number(text)
  return Number.isFinite(seconds) ? Math.round(seconds * 1000) : text
}

export class ConfigError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

/**
 * Reads flags and environment once. Throws ConfigError naming the flag and the value so that
 * start fails fast (principle 4). `argv` without the node and script entries.
 */
export function loadConfig (argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Config {
  let values: Record<string, string | boolean | undefined>
  try {
    const options = Object.fromEntries(Object.keys(FLAGS).map(f => [f, { type: 'string' as const }]))
    values = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } }, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n${usage()}`)
  }
  if (values.help) throw new ConfigError(usage())
  const raw: Record<string, unknown> = {}
  for (const [flag, envName] of Object.entries(FLAGS)) {
    const text = (values[flag] as string | undefined) ?? env[envName]
    if (text !== undefined && text !== '') raw[toConfigKey(flag)] = fromText(flag, text)
  }
  raw.gpuDevices = visibleGpus(env)
  return makeConfig(raw)
}

function visibleGpus (env: NodeJS.ProcessEnv): string[] {
  const listed = env.CUDA_VISIBLE_DEVICES
  if (listed !== undefined) return listed.split(',').map(s => s.trim()).filter(s => s !== '' && s !== '-1')
  try {
    return fs.readdirSync('/dev').filter(f => /^nvidia\d+$/.test(f)).map(f => f.slice('nvidia'.length)).sort((a, b) => Number(a) - Number(b))
  } catch {
    return []
  }
}

/** The environment a worker process inherits (copied here so no other file reads process.env). */
export function childProcessEnv (): NodeJS.ProcessEnv {
  return { ...process.env }
}

/** A config from plain values (tests, embedding), with the same checks and defaults. */
export function makeConfig (input: ConfigInput = {}): Config {
  const parsed = configSchema.safeParse(input)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const key = String(issue.path[0] ?? '')
    const flag = Object.keys(FLAGS).find(f => toConfigKey(f) === key) ?? key
    const given = (input as Record<string, unknown>)[key]
    throw new ConfigError(`--${flag} (${FLAGS[flag as keyof typeof FLAGS] ?? ''}): ${issue.message}${given !== undefined ? ` (got '${String(given)}')` : ''}`)
  }
  return Object.freeze(parsed.data)
}

export function usage (): string {
  return 'usage: npm start -- [' + Object.entries(FLAGS).map(([f, e]) => `--${f} <${e}>`).join('] [') + ']\n' +
    '  --backend: ' + BACKENDS.join(' | ') + '; --request-timeout in seconds; byte sizes accept KiB/MiB/GiB'
}

/** What start prints: every field (there are no secrets yet; api keys will be masked here). */
export function describeConfig (config: Config): Record<string, unknown> {
  return { ...config, workers: config.workers ?? 'auto' }
}
