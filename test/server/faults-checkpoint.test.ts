// kill -9 in a loop during checkpoint writes, bounded (the long run: npm run crashloop --
// --rounds 100). Each round starts the real entry on the same data directory, steps a cpc
// instance whose checkpoint takes measurable time to write, and SIGKILLs the server the
// moment the writer's temp file appears (every 4th round: at a random delay). After each
// restart the instance is at the last acknowledged step or the one in flight, bit for bit,
// nothing was quarantined, no temp file is left or listed as an instance, and it trains on.
// The rounds and their checks are scripts/crash-loop.ts's (one copy of the logic).
import t from 'tap'
import { runCrashLoop, summarize } from '../../scripts/crash-loop.ts'

const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 5)

t.test(`kill -9 during checkpoint writes, ${ROUNDS} rounds`, async t => {
  const seed = Number(process.env.CRASH_SEED ?? (Date.now() & 0x7fffffff))
  t.comment(`seed ${seed} (replay: CRASH_SEED=${seed})`)
  const result = await runCrashLoop({ rounds: ROUNDS, hidden: 384, seed, randomEvery: 4, log: line => t.comment(line) })
  t.comment(summarize(result))
  t.same(result.problems, [], 'every restart restored the acknowledged or the in-flight step bit for bit, quarantined nothing, left no temp file')
  t.equal(result.rounds.length, ROUNDS, 'every round ran')
  const midWrite = result.rounds.filter(r => r.how === 'mid-write')
  t.ok(midWrite.some(r => r.tempLeft), `at least one kill landed while the temp file was on disk (${midWrite.filter(r => r.tempLeft).length} of ${midWrite.length})`)
  for (const r of result.rounds) {
    t.ok(r.restoredStep === r.ackedStep || (r.inFlightRestored && r.restoredStep === r.ackedStep + 1), `round ${r.round}: restored ${r.restoredStep}, acknowledged ${r.ackedStep}`)
    if (r.tempLeft) t.equal(r.restoredStep, r.ackedStep, `round ${r.round}: an uncommitted write restores the acknowledged step`)
    if (r.tempLeft) t.ok(r.tempRemovedAtStart > 0, `round ${r.round}: the start removed the killed write's temp file`)
  }
  const total = result.rounds.reduce((a, r) => a + r.stepsAcked, 0)
  t.ok(result.finalStep >= total, `the instance trained on to step ${result.finalStep}`)
})
