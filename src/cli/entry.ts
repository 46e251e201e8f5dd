// Runs another entry script of this package (server/start.ts, bench/run.ts) in this process
// as if node had been started on it: process.argv becomes [node, script, ...flags], which is
// what their parseArgs and loadConfig read. Imported by URL at run time, not statically, so
// src/ keeps no compile-time dependency on server/ or bench/ (dependencies point
// server -> src); tsx, registered by bin/ssl-loss-server.mjs, loads the .ts files.
import { fileURLToPath } from 'node:url'

export async function runEntry (relativeToRepo: string, flags: string[]): Promise<void> {
  const url = new URL(`../../${relativeToRepo}`, import.meta.url)
  process.argv = [process.argv[0], fileURLToPath(url), ...flags]
  await import(url.href)
}
