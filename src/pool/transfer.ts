// Which ArrayBuffers a message may move (transfer) instead of copy (piscina's rule: move
// bytes, don't copy them). A tensor whose Float32Array is the whole of its ArrayBuffer owns
// it and can move. A view into a larger buffer (a slice of Node's pooled Buffer slab, a
// msgpack body shared with other requests, wasm memory) would detach memory that others
// still use: it is copied once into a buffer of its own, which then moves.
import type { HostTensor } from '../tensor.ts'

type Tree = Record<string, HostTensor | HostTensor[]> | undefined

/** True when a transfer list may name this tensor's buffer without detaching anyone else's data. */
function ownsBuffer (t: HostTensor, shared: ReadonlySet<ArrayBufferLike>): boolean {
  const buf = t.data.buffer
  if (!(buf instanceof ArrayBuffer)) return false // SharedArrayBuffer (wasm threads) never moves
  if (shared.has(buf)) return true
  return t.data.byteOffset === 0 && t.data.byteLength === buf.byteLength
}

/**
 * Returns the transfer list for the tensors in `trees`, replacing (in place) the data of any
 * tensor that does not own its buffer by a private copy. `owned` names buffers that belong to
 * this message as a whole (e.g. a request body that only this request's tensors view), which
 * move once however many tensors view them.
 */
export function transferList (trees: Tree[], owned: ReadonlySet<ArrayBufferLike> = new Set()): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>()
  const visit = (t: HostTensor): void => {
    if (!ownsBuffer(t, owned)) t.data = t.data.slice()
    out.add(t.data.buffer as ArrayBuffer)
  }
  for (const tree of trees) {
    if (!tree) continue
    for (const v of Object.values(tree)) {
      if (Array.isArray(v)) v.forEach(visit)
      else visit(v)
    }
  }
  return [...out]
}
