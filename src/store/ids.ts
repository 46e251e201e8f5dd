// Task instance ids: made by the server from 100 random bits, never by a client, and checked
// against one strict pattern before they are used anywhere (a map key, a file name). No file
// path is ever built from a string that did not pass isTaskId().
import { randomBytes } from 'node:crypto'
import { TASK_ID } from '../../schemas/task.ts'

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567' // RFC 4648 alphabet, lower case

export function newTaskId (): string {
  const bytes = randomBytes(13) // 104 bits; 20 characters use 100 of them
  let bits = 0
  let value = 0
  let out = ''
  for (const b of bytes) {
    value = (value << 8) | b
    bits += 8
    while (bits >= 5 && out.length < 20) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
    value &= (1 << bits) - 1
  }
  return `t_${out}`
}

export function isTaskId (id: unknown): id is string {
  return typeof id === 'string' && TASK_ID.test(id)
}
