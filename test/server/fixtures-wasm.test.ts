// Every shared fixture answered correctly through the real app on the wasm backend.
import t from 'tap'
import { loadFixtures } from '../helpers/fixtures.ts'
import { fixtureSuite } from '../helpers/server.ts'

await fixtureSuite(t, 'wasm', loadFixtures())
