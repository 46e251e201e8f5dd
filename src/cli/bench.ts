// `ssl-loss-server bench [flags]`: bench/run.ts (`npm run bench`) with these flags. The
// bench parses its own flags (strict) when it loads and prints its own --help; an unknown
// flag there is a usage error here (exit 2), whatever it would be as a script.
import { runEntry } from './entry.ts'
import { EXIT, type CliIo } from './io.ts'
import { BENCH_USAGE } from './usage.ts'

export async function benchCommand (flags: string[], io: CliIo): Promise<number> {
  try {
    await runEntry('bench/run.ts', flags)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    if (!code.startsWith('ERR_PARSE_ARGS_')) throw err
    io.stderr(`ssl-loss-server bench: ${(err as Error).message}\n${BENCH_USAGE}\n`)
    return EXIT.usage
  }
  return EXIT.ok
}
