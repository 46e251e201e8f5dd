// Where the CLI writes: stdout for what was asked (usage after --help, an imported
// instance), stderr for errors and progress. A parameter so tests can run commands in
// process and read what they printed.
export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
}

export const PROCESS_IO: CliIo = {
  stdout: text => { process.stdout.write(text) },
  stderr: text => { process.stderr.write(text) }
}

/** What a command ends with: an exit code, or 'running' (serve: the server keeps the process alive). */
export type Outcome = number | 'running'

/** Exit codes: 0 done, 1 the operation failed (server error, unreadable file), 2 bad usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

export const wantsHelp = (argv: readonly string[]): boolean => argv.includes('--help') || argv.includes('-h')
