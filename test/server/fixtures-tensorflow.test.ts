// Every shared fixture answered correctly through the real app on the tensorflow backend
// (tfjs-node in worker threads). Its addon is built by `npm run setup:tensorflow` (CI does).
import t from 'tap'
import { loadFixtures } from '../helpers/fixtures.ts'
import { TEST_BACKENDS, requireAllBackends } from '../helpers/backends.ts'
import { fixtureSuite } from '../helpers/server.ts'

if (TEST_BACKENDS.includes('tensorflow')) await fixtureSuite(t, 'tensorflow', loadFixtures())
else if (requireAllBackends()) t.fail('the tensorflow backend is not built: run npm run setup:tensorflow')
else t.comment('tensorflow backend not built here (npm run setup:tensorflow); its fixture run is not exercised')
