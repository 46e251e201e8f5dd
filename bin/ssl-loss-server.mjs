#!/usr/bin/env node
// The package's bin: registers tsx (the project runs TypeScript without a build step), then
// hands the arguments to src/cli/main.ts. 'running' (serve) leaves the process to the
// server, which exits on SIGTERM/SIGINT; anything else sets the exit code and lets stdout
// drain rather than cutting it with process.exit().
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../src/cli/main.ts')
const outcome = await main(process.argv.slice(2))
if (typeof outcome === 'number') process.exitCode = outcome
