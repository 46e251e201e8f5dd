// The `ssl-loss-server` command (package.json "bin" -> bin/ssl-loss-server.mjs -> here):
//   ssl-loss-server [serve] [flags]   the server (default command)
//   ssl-loss-server bench [flags]     the benchmark
//   ssl-loss-server state export|import ...
// --help anywhere prints that command's usage and exits 0; an unknown command or flag
// prints the usage on stderr and exits 2 (the usual convention of getopt tools).
import { benchCommand } from './bench.ts'
import { EXIT, PROCESS_IO, type CliIo, type Outcome } from './io.ts'
import { serveCommand } from './serve.ts'
import { stateCommand } from './state.ts'
import { MAIN_USAGE } from './usage.ts'

export async function main (argv: string[], io: CliIo = PROCESS_IO): Promise<Outcome> {
  const [first, ...rest] = argv
  // no command, or flags first: serve (`ssl-loss-server --port 9000`)
  if (first === undefined || (first.startsWith('-') && first !== '--help' && first !== '-h')) return await serveCommand(argv, io)
  switch (first) {
    case '--help':
    case '-h':
    case 'help':
      io.stdout(MAIN_USAGE + '\n')
      return EXIT.ok
    case 'serve': return await serveCommand(rest, io)
    case 'bench': return await benchCommand(rest, io)
    case 'state': return await stateCommand(rest, io)
    default:
      io.stderr(`ssl-loss-server: unknown command '${first}'\n${MAIN_USAGE}\n`)
      return EXIT.usage
  }
}
