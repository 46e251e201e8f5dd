// Usage texts of ssl-loss-server and its subcommands (printed by --help on stdout, and after
// a usage error on stderr).
import { usage as serveFlags } from '../config.ts'

export const MAIN_USAGE = `usage: ssl-loss-server [command] [flags]
commands:
  serve [flags]     start the server (the default command; the same as npm start)
  bench [flags]     run the benchmark (the same as npm run bench)
  state export --url URL --task ID [--api-key KEY] [--optimizer] -o FILE
  state import --url URL --task ID [--api-key KEY] -i FILE
Each command takes --help.`

export function serveUsage (): string {
  return `usage: ssl-loss-server [serve] [flags]
Starts the server; flags over environment variables over defaults (src/config.ts).
${serveFlags().replace(/^usage: npm start -- /, 'flags: ')}`
}

export const STATE_USAGE = `usage: ssl-loss-server state export --url URL --task ID [--api-key KEY] [--optimizer] -o FILE
       ssl-loss-server state import --url URL --task ID [--api-key KEY] -i FILE
Exports a task instance's parameters (GET /v1/tasks/{id}/state) as a safetensors file, or
replaces them from one (PUT /v1/tasks/{id}/state).
  --url URL        the server, e.g. http://127.0.0.1:8080
  --task ID        the task instance
  --api-key KEY    bearer key, when the server has --api-keys
  --optimizer      export: include the optimizer state (optimizer.* tensors)
  -o, --output F   export: the file to write ('-': stdout)
  -i, --input F    import: the file to read ('-': stdin)`

// the bench's flags are its own (bench/run.ts HELP, printed by `bench --help`)
export const BENCH_USAGE = 'usage: ssl-loss-server bench [flags]   (the flags of npm run bench; ssl-loss-server bench --help lists them)'
