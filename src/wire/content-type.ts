// Content-Type and Accept (../shared/spec/API.md "Content types"): bodies are msgpack
// (application/msgpack, also application/x-msgpack) or JSON (application/json); responses
// follow Accept when it names one of them, else the request's type. Media types and their
// parameters as in RFC 9110 §8.3.1 and §12.5.1 (q-values, most specific range wins).
// Deciding the 415 is the caller's: an unsupported type parses to undefined.
import type { WireForm } from './tensor-codec.ts'

export type { WireForm }

/** What a response of each form says in its Content-Type. */
export const MEDIA_TYPE: Readonly<Record<WireForm, string>> = Object.freeze({
  msgpack: 'application/msgpack',
  json: 'application/json; charset=utf-8'
})

const FORMS: Readonly<Record<string, WireForm>> = Object.freeze({
  'application/msgpack': 'msgpack',
  'application/x-msgpack': 'msgpack',
  'application/json': 'json'
})

interface MediaRange { type: string, subtype: string, params: Record<string, string> }

function parseMediaRange (s: string): MediaRange | undefined {
  const [essence, ...rest] = s.split(';')
  const m = /^\s*([a-z0-9!#$%&'*+.^_`|~-]+)\/([a-z0-9!#$%&'*+.^_`|~-]+)\s*$/i.exec(essence)
  if (!m) return undefined
  const params: Record<string, string> = Object.create(null)
  for (const p of rest) {
    const eq = p.indexOf('=')
    if (eq < 0) continue
    let val = p.slice(eq + 1).trim()
    if (val.length >= 2 && val.startsWith('"') && val.endsWith('"')) val = val.slice(1, -1)
    params[p.slice(0, eq).trim().toLowerCase()] = val
  }
  return { type: m[1].toLowerCase(), subtype: m[2].toLowerCase(), params }
}

/**
 * The form of a request body from its Content-Type, or undefined (→ 415). JSON must be
 * UTF-8 (RFC 8259 §8.1): another declared charset is unsupported rather than misread.
 */
export function requestForm (contentType: string | undefined): WireForm | undefined {
  if (contentType === undefined) return undefined
  const r = parseMediaRange(contentType)
  if (!r) return undefined
  const form = FORMS[`${r.type}/${r.subtype}`]
  if (form === 'json') {
    const cs = r.params.charset?.toLowerCase()
    if (cs !== undefined && cs !== 'utf-8' && cs !== 'utf8') return undefined
  }
  return form
}

/**
 * The form of the response: the supported type that Accept prefers (highest q; for each of
 * our types the most specific matching range sets its q), ties and no usable Accept going to
 * `fallback` (the request's form, or the route's default for body-less requests).
 */
export function responseForm (accept: string | string[] | undefined, fallback: WireForm): WireForm {
  if (accept === undefined) return fallback
  const header = Array.isArray(accept) ? accept.join(',') : accept
  if (header.trim() === '') return fallback
  const q: Record<WireForm, number> = { msgpack: 0, json: 0 }
  const specificity: Record<WireForm, number> = { msgpack: -1, json: -1 }
  for (const part of header.split(',')) {
    const r = parseMediaRange(part)
    if (!r) continue
    let weight = 1
    if (r.params.q !== undefined) {
      weight = Number(r.params.q)
      if (!Number.isFinite(weight) || weight < 0 || weight > 1) continue
    }
    for (const [media, form] of Object.entries(FORMS)) {
      const [type, subtype] = media.split('/')
      let s: number
      if (r.type === type && r.subtype === subtype) s = 2
      else if (r.type === type && r.subtype === '*') s = 1
      else if (r.type === '*' && r.subtype === '*') s = 0
      else continue
      // application/msgpack and application/x-msgpack name the same form: the higher q counts
      if (s > specificity[form] || (s === specificity[form] && weight > q[form])) {
        specificity[form] = s
        q[form] = weight
      }
    }
  }
  const best = Math.max(q.msgpack, q.json)
  if (best <= 0 || q[fallback] === best) return fallback
  return q.msgpack === best ? 'msgpack' : 'json'
}
