// Entry of a worker thread or child process. tsx's `--import` does not reach worker threads
// on Node 20, so the TypeScript loader is registered here before the worker's code loads.
import { register } from 'tsx/esm/api'

register()
await import('./worker.ts')
