// A progress bar on stderr in plain ANSI (no package): on a terminal one line redrawn with
// \r and "erase line" (ESC [2K); elsewhere (CI logs, tests) one plain line every tenth of
// the run, so logs stay short and readable.
export interface Progress {
  step (i: number, loss: number): void
  done (): void
}

const WIDTH = 30

export function progressBar (total: number, label: string, stream: NodeJS.WriteStream = process.stderr, enabled = true): Progress {
  const tty = stream.isTTY === true
  const t0 = performance.now()
  let last = -1
  return {
    step (i, loss) {
      if (!enabled) return
      const done = i + 1
      const filled = Math.round(WIDTH * done / total)
      const msPerStep = (performance.now() - t0) / done
      const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${String(done).padStart(String(total).length)}/${total} loss ${loss.toFixed(4)} ${msPerStep.toFixed(0)} ms/step`
      if (tty) {
        stream.write(`\r\x1b[2K${line}`)
      } else {
        const decile = Math.floor(10 * done / total)
        if (decile !== last || done === total) { stream.write(line + '\n'); last = decile }
      }
    },
    done () {
      if (enabled && tty) stream.write('\n')
    }
  }
}
