// Which backends the tests run on. `tensorflow` needs `npm run setup:tensorflow`; when its
// addon is missing the suites say so loudly (and CI fails, since .ci/run builds it).
import { installedBackends, type ConcreteBackend } from '../../src/compute/backend.ts'

export const TEST_BACKENDS: ConcreteBackend[] = (['tensorflow', 'wasm', 'cpu'] as const).filter(b => installedBackends().includes(b))

export function missingBackends (): ConcreteBackend[] {
  return (['tensorflow', 'wasm', 'cpu'] as const).filter(b => !TEST_BACKENDS.includes(b))
}

/** In CI (CI=true) every backend must be present; elsewhere a missing one is reported. */
export function requireAllBackends (): boolean {
  return process.env.CI === 'true' || process.env.REQUIRE_TENSORFLOW === '1'
}
