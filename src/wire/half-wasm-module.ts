// The WebAssembly SIMD kernels behind half.ts's bulk conversions, written as source here
// and assembled to bytes on load (no toolchain, no committed binary). Each export takes
// (src byte offset, dst byte offset, element count) in the module's own memory, converts 8
// elements per loop step with 128-bit vectors, and rounds the count up to a multiple of 8
// (the caller's buffers have room; it copies out only what it asked for).
//
// Encodings: WebAssembly core spec 2.0 §5 (binary format) and the fixed-width SIMD opcodes
// (prefix 0xfd) of https://github.com/WebAssembly/simd/blob/main/proposals/simd/BinarySIMD.md.
// Methods (details at each kernel):
//   float16 -> float32: integer rebias, subnormals by a magic float subtraction (F. Giesen,
//   "half_to_float_fast5", 2016); NaN payloads kept.
//   float32 -> float16: M. Dukhan's FP16 library (fp16/fp16.h, fp16_ieee_from_fp32_value, as
//   PyTorch's c10/util/Half.h): the float32 adder does the round to nearest even.
//   bfloat16: shifts, and the same integer round as half-scalar.ts.
// The narrowing kernels get NaN lanes wrong on purpose and say so (half-wasm.ts redoes them
// by the scalar rule); everything else agrees with half-scalar.ts bit for bit.

// ---- a minimal assembler ------------------------------------------------------------------
type Code = number[]

/** unsigned LEB128 */
function uleb (n: number): Code {
  const out: Code = []
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}
/** signed LEB128 of a 32-bit integer */
function sleb (n: number): Code {
  const out: Code = []
  n |= 0
  for (;;) {
    const b = n & 0x7f
    n >>= 7
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) { out.push(b); return out }
    out.push(b | 0x80)
  }
}
const vec = (items: Code[]): Code => [...uleb(items.length), ...items.flat()]
const section = (id: number, body: Code): Code => [id, ...uleb(body.length), ...body]
const name = (s: string): Code => vec([...Buffer.from(s, 'utf8')].map(b => [b]))

// instructions; SIMD ones are 0xfd followed by a LEB128 opcode
const simd = (op: number): Code => [0xfd, ...uleb(op)]
const get = (i: number): Code => [0x20, ...uleb(i)]
const set = (i: number): Code => [0x21, ...uleb(i)]
const i32 = (n: number): Code => [0x41, ...sleb(n)]
/** v128.const with the same 32-bit value in all four lanes (TurboFan keeps these in registers or rebuilds them cheaply) */
const splat = (n: number): Code => [...simd(0x0c), ...[0, 1, 2, 3].flatMap(() => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24])]
const load = (base: Code, offset: number): Code => [...base, ...simd(0x00), 4, ...uleb(offset)] // align 2^4
const store = (base: Code, value: Code, offset: number): Code => [...base, ...value, ...simd(0x0b), 4, ...uleb(offset)]
const op2 = (op: number) => (a: Code, b: Code): Code => [...a, ...b, ...simd(op)]
const op1 = (op: number) => (a: Code): Code => [...a, ...simd(op)]
const and = op2(0x4e)
const andNot = op2(0x4f) // a & ~b
const xor = op2(0x51)
const or = op2(0x50)
const gtS = op2(0x3b) // i32x4.gt_s
const add = op2(0xae) // i32x4.add
const maxU = op2(0xb9) // i32x4.max_u
const fadd = op2(0xe4) // f32x4.add
const fsub = op2(0xe5) // f32x4.sub
const fmul = op2(0xe6) // f32x4.mul
const narrowU = op2(0x86) // i16x8.narrow_i32x4_u (our lanes are all in [0, 0xffff])
const extendLow = op1(0xa9) // i32x4.extend_low_i16x8_u
const extendHigh = op1(0xaa) // i32x4.extend_high_i16x8_u
const shl = (a: Code, n: number): Code => [...a, ...i32(n), ...simd(0xab)]
const shrU = (a: Code, n: number): Code => [...a, ...i32(n), ...simd(0xad)]

// ---- the kernels --------------------------------------------------------------------------
// params 0 src, 1 dst, 2 n (i32); locals from 3 on are v128 temporaries
const SRC = get(0)
const DST = get(1)

/**
 * Function body: while (n > 0) { step; src += srcStep; dst += dstStep; n -= 8 }.
 * n <= 0 does nothing; a count that is not a multiple of 8 runs one step past it.
 * `nanResult`: local NAN (the last temporary, zero at the start) keeps the largest |x| bits
 * the steps saw per lane, and the function returns whether any of them is a NaN.
 */
function loop8 (step: Code, srcStep: number, dstStep: number, v128Locals: number, nanResult = false): Code {
  const body = [
    0x02, 0x40, // block
    0x03, 0x40, //   loop
    ...get(2), ...i32(0), 0x4c, 0x0d, 1, // n <= 0 (i32.le_s): br_if out of the block
    ...step,
    ...get(0), ...i32(srcStep), 0x6a, ...set(0),
    ...get(1), ...i32(dstStep), 0x6a, ...set(1),
    ...get(2), ...i32(8), 0x6b, ...set(2),
    0x0c, 0, // br to the loop
    0x0b, 0x0b, // end loop, end block
    ...(nanResult ? [...gtS(get(NAN), splat(0x7f800000)), ...simd(0x53)] : []) // any lane NaN: v128.any_true
  ]
  const locals = v128Locals > 0 ? vec([[...uleb(v128Locals), 0x7b]]) : vec([])
  const code = [...locals, ...body, 0x0b]
  return [...uleb(code.length), ...code]
}

/**
 * float16 bits (zero-extended to i32 lanes) -> float32 bits; `h` is a local holding them.
 * Normals: shift and rebias the exponent by 127 - 15 (twice for Inf/NaN, which makes it all
 * ones and keeps the payload); subnormals by the magic subtraction (0.5 + m 2^-24) - 0.5 =
 * m 2^-24 in float32 (F. Giesen, half_to_float_fast5 / SSE2). No float operation ever sees a
 * float32 subnormal, which on x86 costs a microcode assist per instruction: Dukhan's
 * (bits << 13) * 2^112 took 10.1 ns an element on values of magnitude 1e-5 (float16
 * subnormals, common in gradients) and 1.8 on random bits, against 0.65 and 0.63 for this
 * (in-cache chunk, best of 400, loaded 2-core box).
 */
function f16ToF32 (h: number, em: number, sub: number): Code {
  return [
    ...and(get(h), splat(0x7fff)), ...set(em),
    ...gtS(splat(0x400), get(em)), ...set(sub),
    ...or(
      or(
        and(fsub(or(get(em), splat(0x3f000000)), splat(0x3f000000)), get(sub)),
        andNot(
          add(add(shl(get(em), 13), splat(0x38000000)), and(gtS(get(em), splat(0x7bff)), splat(0x38000000))),
          get(sub))),
      shl(xor(get(h), get(em)), 16))
  ]
}

/**
 * float32 bits -> float16 bits in i32 lanes (M. Dukhan's fp16_ieee_from_fp32_value); `x` is a
 * local holding them, the rest temporaries. |x| * 2^112 * 2^-110 is 4|x|, or Inf when
 * |x| >= 2^16; adding the power of two 2^13 times above it (at least that of 2^-14, the
 * float16 subnormal step) makes the float32 adder round it to 10 mantissa bits, ties to
 * even, and the float16 exponent and mantissa are then read off the sum's bits (a carry out
 * of the mantissa, e.g. 65520 -> Inf, lands in the exponent, as it should).
 * NaN lanes come out wrong: `nan` keeps the largest |x| bits per lane, and the caller redoes
 * a chunk with NaNs in it by the scalar rule, which keeps payloads; NaNs are rare in real
 * data, and selecting the NaN result in every lane cost a third of the kernel's time.
 */
function f32ToF16 (x: number, abs: number, sum: number, nan: number): Code {
  // Dukhan: ((max(2|x| & 0xff000000, 0x71000000)) >> 1) + 0x07800000, the same in fewer steps
  const bias = maxU(and(get(abs), splat(0x7f800000)), splat(0x38800000))
  const base = fadd(
    add(bias, splat(0x07800000)),
    fmul(fmul(get(abs), splat(0x77800000)), splat(0x08800000))) // * 2^112 * 2^-110
  return [
    ...and(get(x), splat(0x7fffffff)), ...set(abs),
    ...maxU(get(nan), get(abs)), ...set(nan),
    // float32 subnormals round to a float16 0: make them 0 before any float operation. An
    // x86 microcode assist per instruction otherwise: 17.9 ns an element on float32
    // subnormals without this, 0.9 with it; 0.74 -> 0.84 on ordinary values (in-cache chunk)
    ...and(get(abs), gtS(get(abs), splat(0x007fffff))), ...set(abs),
    ...base, ...set(sum),
    ...or(
      add(and(shrU(get(sum), 13), splat(0x7c00)), and(get(sum), splat(0xfff))),
      and(shrU(get(x), 16), splat(0x8000)))
  ]
}

/** float32 bits -> bfloat16 bits in i32 lanes, round to nearest even; NaN lanes as above */
function f32ToBf16 (x: number, nan: number): Code {
  return [
    ...maxU(get(nan), and(get(x), splat(0x7fffffff))), ...set(nan),
    ...shrU(add(add(get(x), splat(0x7fff)), and(shrU(get(x), 16), splat(1))), 16)
  ]
}

// locals: 3.. v128; NAN is the NaN accumulator of the narrowing kernels (see loop8)
const L = { a: 3, b: 4, c: 5, d: 6 }
const NAN = 7

const f16ToF32Body = loop8([
  ...load(SRC, 0), ...set(L.a),
  ...store(DST, [...extendLow(get(L.a)), ...set(L.b), ...f16ToF32(L.b, L.c, L.d)], 0),
  ...store(DST, [...extendHigh(get(L.a)), ...set(L.b), ...f16ToF32(L.b, L.c, L.d)], 16)
], 16, 32, 4)

const narrowF16 = (offset: number): Code => [...load(SRC, offset), ...set(L.a), ...f32ToF16(L.a, L.b, L.c, NAN)]
const f32ToF16Body = loop8([
  ...store(DST, narrowU(narrowF16(0), narrowF16(16)), 0)
], 32, 16, 5, true)

const bf16ToF32Body = loop8([
  ...load(SRC, 0), ...set(L.a),
  ...store(DST, shl(extendLow(get(L.a)), 16), 0),
  ...store(DST, shl(extendHigh(get(L.a)), 16), 16)
], 16, 32, 1)

const f32ToBf16Body = loop8([
  ...store(DST, narrowU(
    [...load(SRC, 0), ...set(L.a), ...f32ToBf16(L.a, NAN)],
    [...load(SRC, 16), ...set(L.a), ...f32ToBf16(L.a, NAN)]), 0)
], 32, 16, 5, true)

/** Pages of 64 KiB the module's memory has: room for a chunk in and out (half-wasm.ts). */
export const PAGES = 4

export const EXPORTS = ['f16ToF32', 'f32ToF16', 'bf16ToF32', 'f32ToBf16'] as const

/** The module's bytes: one memory of PAGES pages (exported as "memory") and the four kernels. */
export function halfModuleBytes (): Uint8Array<ArrayBuffer> {
  const widening = [0x60, ...vec([[0x7f], [0x7f], [0x7f]]), ...vec([])] // (i32 i32 i32) -> ()
  const narrowing = [0x60, ...vec([[0x7f], [0x7f], [0x7f]]), ...vec([[0x7f]])] // (i32 i32 i32) -> i32: any NaN
  const bodies = [f16ToF32Body, f32ToF16Body, bf16ToF32Body, f32ToBf16Body]
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, vec([widening, narrowing])),
    ...section(3, vec([[0], [1], [0], [1]])),
    ...section(5, vec([[0x00, ...uleb(PAGES)]])), // min PAGES, no max
    ...section(7, vec([
      [...name('memory'), 0x02, 0],
      ...EXPORTS.map((e, i) => [...name(e), 0x00, i])
    ])),
    ...section(10, vec(bodies))
  ])
}
