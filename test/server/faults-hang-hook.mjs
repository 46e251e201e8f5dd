// Test-only preload for a worker child process (loaded with NODE_OPTIONS=--import by
// test/server/faults.test.ts; never by the server): an evaluation whose options.seed is
// 0xDEAD spins forever, as a kernel stuck in a native call would, before the worker sees it.
// It wraps process.emit instead of adding a 'message' listener: a listener would start the
// IPC channel reading before the worker's own listener exists, and 'init' would be lost.
// No request option of the production server can do this.
export const HANG_SEED = 0xDEAD

const emit = process.emit
process.emit = function (name, message, ...rest) {
  if (name === 'message' && message?.type === 'eval' && message.request?.options?.seed === HANG_SEED) {
    for (;;) { /* hung */ }
  }
  return emit.call(this, name, message, ...rest)
}
