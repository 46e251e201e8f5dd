// The entry (`npm start`): read the config once, build the app, listen, and shut down
// gracefully on SIGTERM/SIGINT: stop accepting (503 not_ready), finish in-flight work,
// close sockets and workers, exit 0. Nothing else lives here.
import { ConfigError, describeConfig, loadConfig, type Config } from '../src/config.ts'
import { buildServer } from './app.ts'

let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`${err.message}\n`)
  process.exit(2)
}

/** A start-up failure (data directory, port in use) as one line, not a stack trace. */
function cannotStart (err: unknown): never {
  process.stderr.write(`ssl-loss-server: cannot start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
}

const app = await buildServer(config).catch(cannotStart)
app.log.info({ config: describeConfig(config) }, 'configuration')

let stopping = false
async function shutdown (signal: string): Promise<void> {
  if (stopping) {
    app.log.warn(`${signal} again: exiting now`)
    process.exit(1)
  }
  stopping = true
  app.log.info(`${signal}: draining (new requests get 503), finishing in-flight work`)
  try {
    await app.close()
    app.log.info('stopped')
    process.exit(0)
  } catch (err) {
    app.log.error({ err }, 'error while stopping')
    process.exit(1)
  }
}
process.on('SIGTERM', () => { void shutdown('SIGTERM') })
process.on('SIGINT', () => { void shutdown('SIGINT') })

await app.listen({ host: config.host, port: config.port }).catch(async err => {
  await app.close().catch(() => undefined) // the workers started; stop them before exiting
  cannotStart(err)
})
app.pool.ready().then(
  () => {
    const b = app.pool.backend()
    app.log.info({ backend: b?.backend, gpu: b?.gpu, workers: app.pool.size }, 'workers warm: ready')
  },
  err => {
    if (stopping) return
    // fail fast: a backend that cannot load will not load on a retry either
    app.log.fatal({ err: (err as Error).message }, 'workers could not start')
    void app.close().finally(() => process.exit(1))
  }
)
