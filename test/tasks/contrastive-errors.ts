// Asserts that a call raises our LossServerError with the API.md code, the path into the request
// and a message naming the offending values (shared by the contrastive kinds' tests).
import type { Test } from 'tap'
import { LossServerError } from '../../src/errors.ts'

export function throwsCode (t: Test, fn: () => unknown, code: string, path: Array<string | number>, names: RegExp, what: string): void {
  try {
    fn()
    t.fail(`${what}: did not throw`)
  } catch (err) {
    t.ok(err instanceof LossServerError, `${what}: a LossServerError (${(err as Error).message})`)
    t.equal((err as LossServerError).code, code, `${what}: code`)
    t.same((err as LossServerError).path, path, `${what}: path`)
    t.match((err as Error).message, names, `${what}: the message names the values`)
  }
}
