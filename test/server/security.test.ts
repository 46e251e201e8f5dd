// Security headers on every kind of answer, and CORS: off by default (no Access-Control-*
// header at all, preflights are 404), on with --cors-origin for the listed origins only.
import t from 'tap'
import { encode } from '../../src/wire/msgpack.ts'
import { loadConfig } from '../../src/config.ts'
import { DOCS_CSP, parseCorsOrigin } from '../../server/plugins/security.ts'
import { MSGPACK, answerOf, testServer } from '../helpers/server.ts'

const f32 = (n: number, s: number): Uint8Array => new Uint8Array(Float32Array.from({ length: n }, (_, i) => Math.sin(s + i)).buffer)
const good = encode({ inputs: { out_1: { dtype: 'float32', shape: [2, 4], data: f32(8, 1) }, out_2: { dtype: 'float32', shape: [2, 4], data: f32(8, 2) } } })

t.test('security headers on answers, errors, health, metrics and docs; no X-Powered-By', async t => {
  const { app } = await testServer(t)
  const answers = {
    evaluation: await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: good }),
    error400: await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: MSGPACK, payload: Buffer.from([0xc1]) }),
    error404: await app.inject({ url: '/nowhere' }),
    error415: await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: { 'content-type': 'text/html' }, payload: '<script>' }),
    ready: await app.inject({ url: '/health/ready' }),
    metrics: await app.inject({ url: '/metrics' })
  }
  t.equal(answers.evaluation.statusCode, 200)
  for (const [what, res] of Object.entries(answers)) {
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
    t.equal(res.headers['cache-control'], 'no-store', `${what}: no-store`)
    t.equal(res.headers['x-powered-by'], undefined, `${what}: no X-Powered-By`)
    t.equal(res.headers['access-control-allow-origin'], undefined, `${what}: no CORS by default`)
    t.equal(res.headers['content-security-policy'], undefined, `${what}: the CSP is the docs page's`)
  }
  for (const url of ['/docs', '/docs/openapi.json']) {
    const res = await app.inject({ url, headers: { origin: 'https://evil.example' } })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-security-policy'], DOCS_CSP, `${url}: CSP`)
    t.match(res.headers['content-security-policy'], /default-src 'none'/)
    t.match(res.headers['content-security-policy'], /frame-ancestors 'none'/)
    t.equal(res.headers['x-frame-options'], 'DENY')
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.equal(res.headers['access-control-allow-origin'], undefined)
  }
  // the docs page loads nothing the CSP forbids: no scripts, no external resources
  const page = (await app.inject({ url: '/docs' })).body
  t.notMatch(page, /<script|<link|<iframe|src=/i)
})

t.test('CORS off: a preflight is 404 and a cross-origin request gets no Access-Control headers', async t => {
  const { app } = await testServer(t)
  const preflight = await app.inject({ method: 'OPTIONS', url: '/v1/loss/nt-xent', headers: { origin: 'https://a.example', 'access-control-request-method': 'POST' } })
  t.equal(preflight.statusCode, 404)
  t.equal(preflight.json().error.code, 'not_found')
  t.same(Object.keys(preflight.headers).filter(h => h.startsWith('access-control-')), [])
  const res = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: { ...MSGPACK, origin: 'https://a.example' }, payload: good })
  t.equal(res.statusCode, 200)
  t.same(Object.keys(res.headers).filter(h => h.startsWith('access-control-')), [])
})

t.test('CORS with an allow-list: allowed origins are echoed, others refused', async t => {
  const { app } = await testServer(t, { corsOrigin: 'https://a.example, https://b.example' })
  const preflight = await app.inject({ method: 'OPTIONS', url: '/v1/loss/nt-xent', headers: { origin: 'https://b.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], 'https://b.example')
  t.match(preflight.headers['access-control-allow-methods'], /POST/)
  t.match(preflight.headers['access-control-allow-headers'], /content-type/)
  t.equal(preflight.headers.vary, 'Origin')

  const refused = await app.inject({ method: 'OPTIONS', url: '/v1/loss/nt-xent', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  t.equal(refused.statusCode, 403)
  t.equal(refused.json().error.code, 'forbidden')
  t.match(refused.json().error.message, /evil\.example/)
  t.equal(refused.headers['access-control-allow-origin'], undefined)

  const allowed = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: { ...MSGPACK, origin: 'https://a.example' }, payload: good })
  t.equal(allowed.statusCode, 200)
  t.equal(allowed.headers['access-control-allow-origin'], 'https://a.example')
  t.match(allowed.headers['access-control-expose-headers'], /x-request-id/)
  const other = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: { ...MSGPACK, origin: 'https://evil.example' }, payload: good })
  t.equal(other.statusCode, 200, 'not a browser-enforced request: answered, but without permission for the page to read it')
  t.equal(other.headers['access-control-allow-origin'], undefined)
  t.equal(other.headers.vary, 'Origin', 'caches keep answers for different origins apart')
  const err = await app.inject({ method: 'POST', url: '/v1/loss/nt-xent', headers: { ...MSGPACK, origin: 'https://a.example' }, payload: Buffer.from([0xc1]) })
  t.equal(err.statusCode, 400)
  t.equal(err.headers['access-control-allow-origin'], 'https://a.example', 'errors are readable by allowed pages too')
  t.equal(answerOf(err).error.code, 'invalid_body')
})

t.test('CORS with *: any origin, no Vary', async t => {
  const { app } = await testServer(t, { corsOrigin: '*' })
  const res = await app.inject({ method: 'GET', url: '/health/live', headers: { origin: 'https://x.example' } })
  t.equal(res.headers['access-control-allow-origin'], '*')
  t.equal(res.headers.vary, undefined)
  const preflight = await app.inject({ method: 'OPTIONS', url: '/v1/stream', headers: { origin: 'https://y.example', 'access-control-request-method': 'GET' } })
  t.equal(preflight.statusCode, 204)
})

t.test('--cors-origin parsing and config', async t => {
  t.equal(parseCorsOrigin(''), undefined)
  t.equal(parseCorsOrigin(' , '), undefined)
  t.same(parseCorsOrigin('*'), { any: true, origins: new Set(['*']) })
  t.same(parseCorsOrigin('https://a.example,https://b.example'), { any: false, origins: new Set(['https://a.example', 'https://b.example']) })
  t.equal(loadConfig([], {}).corsOrigin, '', 'off by default')
  t.equal(loadConfig(['--cors-origin', 'https://a.example'], {}).corsOrigin, 'https://a.example')
  t.equal(loadConfig([], { CORS_ORIGIN: '*' }).corsOrigin, '*')
})
