// `ssl-loss-server [serve] [flags]`: the server, exactly as `npm start` runs it
// (server/start.ts: one config, listen, graceful SIGTERM/SIGINT). The flags are checked here
// first with the same loadConfig, so a usage error exits 2 with the usage on stderr and
// --help exits 0 with it on stdout.
import { ConfigError, loadConfig } from '../config.ts'
import { runEntry } from './entry.ts'
import { EXIT, wantsHelp, type CliIo, type Outcome } from './io.ts'
import { serveUsage } from './usage.ts'

export async function serveCommand (flags: string[], io: CliIo): Promise<Outcome> {
  if (wantsHelp(flags)) { io.stdout(serveUsage() + '\n'); return EXIT.ok }
  try {
    loadConfig(flags)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    // loadConfig appends npm start's usage to parse errors; show ours instead
    io.stderr(`ssl-loss-server serve: ${err.message.split('\n')[0]}\n${serveUsage()}\n`)
    return EXIT.usage
  }
  await runEntry('server/start.ts', flags)
  return 'running'
}
