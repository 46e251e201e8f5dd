// Configuration: command-line flags over environment variables over defaults, parsed once
// with zod and frozen (STYLE.md principle 4). The only file that reads process.env.
import fs from 'node:fs'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { BACKENDS } from './compute/backends-installed.ts'

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
  'max-connections': 'MAX_CONNECTIONS',
  'header-timeout': 'HEADER_TIMEOUT',
  'body-timeout': 'BODY_TIMEOUT',
  'keep-alive-timeout': 'KEEP_ALIVE_TIMEOUT',
  'cors-origin': 'CORS_ORIGIN',
  'data-dir': 'DATA_DIR',
  'checkpoint-every': 'CHECKPOINT_EVERY',
  'api-keys': 'API_KEYS',
  'metrics-auth': 'METRICS_AUTH',
  'max-instances': 'MAX_INSTANCES',
  'max-instance-bytes': 'MAX_INSTANCE_BYTES',
  'log-level': 'LOG_LEVEL'
} as const
/** Flags that may also be given alone (`--metrics-auth` means true). */
const BOOLEAN_FLAGS = new Set(['metrics-auth'])

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

/** true/false from flags and env: true, 1, yes / false, 0, no. */
const flag = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v
  const t = v.trim().toLowerCase()
  if (['true', '1', 'yes'].includes(t)) return true
  if (['false', '0', 'no'].includes(t)) return false
  ctx.addIssue({ code: 'custom', message: `'${v}' is not a boolean (true, false, 1, 0, yes, no)` })
  return z.NEVER
})

// Keys are compared as SHA-256 digests (server/plugins/auth.ts); a short key is guessable
// whatever the comparison, so refuse it at start.
const MIN_KEY_LENGTH = 16
const apiKeys = z.union([z.array(z.string()), z.string()]).transform((v, ctx) => {
  const keys = (typeof v === 'string' ? v.split(',') : v).map(k => k.trim()).filter(k => k !== '')
  for (const k of keys) {
    if (k.length < MIN_KEY_LENGTH || /\s/.test(k)) {
      // never echo a key: say which one by position only
      ctx.addIssue({ code: 'custom', message: `key ${keys.indexOf(k) + 1} of ${keys.length} is shorter than ${MIN_KEY_LENGTH} characters or contains whitespace` })
      return z.NEVER
    }
  }
  return [...new Set(keys)]
})

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
  /** open TCP connections (HTTP keep-alive and WebSocket together); more are dropped at accept */
  maxConnections: int(1).default(1024),
  /** slowloris: the request line and headers must arrive within this (Node's headersTimeout) */
  headerTimeoutMs: int(1).default(30_000),
  /** slowloris: the whole request, body included, must arrive within this (Node's requestTimeout) */
  bodyTimeoutMs: int(1).default(300_000),
  /** an idle keep-alive connection is closed after this */
  keepAliveTimeoutMs: int(1).default(72_000),
  /** CORS: '' (off, the default), '*', or a comma-separated list of allowed origins */
  corsOrigin: z.string().default(''),
  /** task instances: one checkpoint file each, plus quarantine/ for damaged ones */
  dataDir: z.string().min(1).default('./data'),
  /** write an instance's checkpoint every N optimizer steps (1: every acknowledged step is durable) */
  checkpointEvery: int(1).default(1),
  /** bearer keys; empty: no authentication (and the server should stay on loopback) */
  apiKeys: apiKeys.default([]),
  /** GET /metrics also requires a key (when keys are set) */
  metricsAuth: flag.default(false),
  maxInstances: int(0).default(1000),
  /** parameters plus optimizer state of one instance, float32 */
  maxInstanceBytes: bytes.default(1024 * MiB),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
}).strict()

export type Config = Readonly<z.output<typeof configSchema>>
export type ConfigInput = z.input<typeof configSchema>

const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())

/** Flags given in seconds on the command line (--request-timeout 120), milliseconds in the config. */
const SECONDS = new Set(['request-timeout', 'header-timeout', 'body-timeout', 'keep-alive-timeout'])

function toConfigKey (flag: string): string {
  return SECONDS.has(flag) ? `${camel(flag)}Ms` : camel(flag)
}

function fromText (flag: string, text: string): unknown {
  if (flag === 'api-keys') return readKeys(text)
  if (!SECONDS.has(flag)) return text
  const seconds = Number(text)
  return Number.isFinite(seconds) ? Math.round(seconds * 1000) : text
}

/** --api-keys: comma-separated keys, or @path to a file with one key per line (# comments). */
function readKeys (text: string): string[] {
  if (!text.startsWith('@')) return text.split(',')
  const file = text.slice(1)
  let content: string
  try {
    content = fs.readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`--api-keys (API_KEYS): cannot read the key file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  return content.split(/\r?\n/).map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))
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
    const options = Object.fromEntries(Object.keys(FLAGS).map(f => [f, { type: BOOLEAN_FLAGS.has(f) ? 'boolean' as const : 'string' as const }]))
    values = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } }, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n${usage()}`)
  }
  if (values.help) throw new ConfigError(usage())
  const raw: Record<string, unknown> = {}
  for (const [flag, envName] of Object.entries(FLAGS)) {
    const given = values[flag]
    if (typeof given === 'boolean') { raw[toConfigKey(flag)] = given; continue }
    const text = given ?? env[envName]
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
    const given = key === 'apiKeys' ? undefined : (input as Record<string, unknown>)[key]
    throw new ConfigError(`--${flag} (${FLAGS[flag as keyof typeof FLAGS] ?? ''}): ${issue.message}${given !== undefined ? ` (got '${String(given)}')` : ''}`)
  }
  return Object.freeze(parsed.data)
}

export function usage (): string {
  return 'usage: npm start -- [' + Object.entries(FLAGS).map(([f, e]) => `--${f} <${e}>`).join('] [') + ']\n' +
    '  --backend: ' + BACKENDS.join(' | ') + '; --request-timeout, --header-timeout, --body-timeout, --keep-alive-timeout in seconds; byte sizes accept KiB/MiB/GiB'
}

/** What start prints: every field except the api keys, which are only counted. */
export function describeConfig (config: Config): Record<string, unknown> {
  return { ...config, workers: config.workers ?? 'auto', apiKeys: `${config.apiKeys.length} key(s)` }
}
