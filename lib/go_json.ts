/**
 * JSON the way Go's encoding/json writes and reads it. modeld's codec is
 * `json.Marshal`/`json.Unmarshal` over Go structs, and three details of
 * canonical protobuf JSON break it:
 *
 * - protobuf JSON quotes 64-bit integers (`"7"`); Go rejects a quoted number
 *   for an int field. {@linkcode goJsonBytes} writes them bare.
 * - Go writes 64-bit integers bare, and `JSON.parse` rounds those beyond 2^53.
 *   {@linkcode readGoJson} quotes them before parsing
 *   ({@linkcode quoteUnsafeIntegers}), which protobuf-es accepts for int64
 *   fields, so they stay exact.
 * - Go `int` is 64-bit. Those fields are protobuf `double`s marked `go_int`
 *   (a JS number, any size the daemon sends, exact up to 2^53); on the way
 *   out a value that is not an exact integer within ±(2^53 − 1), the largest
 *   that cannot be the rounding of another, is refused.
 *
 * Messages are written straight from the protobuf-es message to UTF-8 bytes,
 * one pass, with no intermediate JSON object or string of the whole message.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { DecodeRequestSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
 * import { goJson } from "./go_json.ts";
 *
 * const req = create(DecodeRequestSchema, { handle: "h", config: { seed: 2n ** 60n } });
 * console.assert(goJson(DecodeRequestSchema, req).includes('"Seed":1152921504606846976'));
 * ```
 *
 * @module
 */

import {
  type DescEnum,
  type DescField,
  type DescMessage,
  fromJson,
  getOption,
  isFieldSet,
  type JsonValue,
  type MessageShape,
  ScalarType,
} from "@bufbuild/protobuf";
import { go_int } from "../gen/contenox/transport/v1/compute_pb.ts";
import { InvalidArgumentError } from "./errors.ts";

const INTEGER_TEXT = /^-?\d+$/;
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/**
 * A message as Go's encoding/json wants it, as JSON text: the keys are the
 * fields' JSON names, in field-number order, zero values of plain fields left
 * out (what protobuf-es `toJson` writes, and Go reads a missing key as zero),
 * 64-bit integers bare, bytes as padded standard base64.
 *
 * @param desc The message's descriptor.
 * @param message The message (from `create`).
 * @returns The JSON text.
 * @throws {InvalidArgumentError} When a float is NaN or infinite, or a Go
 *   `int` field holds a number that is not an exact integer within ±(2^53 − 1).
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { UnloadModelRequestSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
 * import { goJson } from "./go_json.ts";
 * const msg = create(UnloadModelRequestSchema, { expectedGeneration: 9007199254740993n });
 * console.assert(goJson(UnloadModelRequestSchema, msg) === '{"expected_generation":9007199254740993}');
 * ```
 */
export function goJson<D extends DescMessage>(desc: D, message: MessageShape<D>): string {
  return utf8Decoder.decode(goJsonBytes(desc, message));
}

/**
 * {@linkcode goJson} as UTF-8 bytes, written in one pass: strings are encoded
 * straight into the result and bytes fields base64-encoded into it, so a 4 MiB
 * PushModel frame never exists as a JavaScript string.
 *
 * @param desc The message's descriptor.
 * @param message The message (from `create`).
 * @param reserve Bytes left free at the start (5 for a gRPC length prefix).
 * @param into A buffer to write into when it is large enough (the bytes are
 *   then a view of it); a new one otherwise.
 * @returns The bytes, `reserve` of them unwritten at the start.
 * @throws {InvalidArgumentError} As {@linkcode goJson}.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { HealthRequestSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
 * import { goJsonBytes } from "./go_json.ts";
 * const bytes = goJsonBytes(HealthRequestSchema, create(HealthRequestSchema), 5);
 * console.assert(bytes.length === 7 && bytes[5] === 0x7b);
 * ```
 */
export function goJsonBytes<D extends DescMessage>(
  desc: D,
  message: MessageShape<D>,
  reserve = 0,
  into?: Uint8Array,
): Uint8Array {
  const out = new JsonOut();
  writeMessage(desc, message as Record<string, unknown>, out);
  return out.finish(reserve, into);
}

/**
 * Reads a message Go's encoding/json wrote: integers beyond 2^53 stay exact,
 * unknown keys (from newer daemons) are ignored, `null` reads as zero.
 *
 * @param desc The message's descriptor.
 * @param text The JSON text.
 * @returns The message.
 * @throws {SyntaxError} When `text` is not JSON; protobuf-es's error when it does not fit `desc`.
 *
 * @example
 * ```ts
 * import { ActiveModelSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
 * import { readGoJson } from "./go_json.ts";
 * const active = readGoJson(ActiveModelSchema, '{"generation":18446744073709551615}');
 * console.assert(active.generation === 18446744073709551615n);
 * ```
 */
export function readGoJson<D extends DescMessage>(desc: D, text: string): MessageShape<D> {
  return fromJson(desc, JSON.parse(quoteUnsafeIntegers(text)) as JsonValue, {
    ignoreUnknownFields: true,
  });
}

/** JSON text with byte runs spliced in, encoded to UTF-8 once at the end. */
class JsonOut {
  text = "";
  #parts: (string | Uint8Array)[] = [];

  /** Appends raw bytes, to be written as base64 (the quotes are the caller's). */
  bytes(value: Uint8Array): void {
    this.#parts.push(this.text, value);
    this.text = "";
  }

  finish(reserve: number, into?: Uint8Array): Uint8Array {
    this.#parts.push(this.text);
    let max = reserve;
    for (const part of this.#parts) {
      max += typeof part === "string" ? part.length * 3 : base64Length(part.length);
    }
    const buf = into && into.length >= max ? into : new Uint8Array(max);
    let at = reserve;
    for (const part of this.#parts) {
      at = typeof part === "string"
        ? at + utf8Encoder.encodeInto(part, buf.subarray(at)).written
        : base64Into(part, buf, at);
    }
    return buf.subarray(0, at);
  }
}

/** One field, with what writing it needs worked out once per message type. */
interface FieldPlan {
  field: DescField;
  /** `"jsonName":` */
  key: string;
  goInt: boolean;
}

const plans = new WeakMap<DescMessage, FieldPlan[]>();
const goIntFields = new WeakMap<DescField, boolean>();

/** Whether `field` is a Go `int` on the daemon (the `go_int` option), cached. */
function isGoInt(field: DescField): boolean {
  let yes = goIntFields.get(field);
  if (yes === undefined) {
    yes = getOption(field, go_int);
    goIntFields.set(field, yes);
  }
  return yes;
}

function planFor(desc: DescMessage): FieldPlan[] {
  let plan = plans.get(desc);
  if (!plan) {
    plan = [...desc.fields].sort((a, b) => a.number - b.number).map((field) => ({
      field,
      key: `${JSON.stringify(field.jsonName)}:`,
      goInt: isGoInt(field),
    }));
    plans.set(desc, plan);
  }
  return plan;
}

function writeMessage(desc: DescMessage, message: Record<string, unknown>, out: JsonOut): void {
  out.text += "{";
  let first = true;
  for (const plan of planFor(desc)) {
    const { field } = plan;
    if (!isFieldSet(message as MessageShape<DescMessage>, field)) continue;
    out.text += first ? plan.key : `,${plan.key}`;
    first = false;
    const value = message[field.localName];
    switch (field.fieldKind) {
      case "scalar":
        writeScalar(plan, field.scalar, value, out);
        break;
      case "enum":
        out.text += enumText(field.enum, value as number);
        break;
      case "message":
        writeMessage(field.message, value as Record<string, unknown>, out);
        break;
      case "list": {
        out.text += "[";
        let i = 0;
        for (const item of value as unknown[]) {
          if (i++ > 0) out.text += ",";
          if (field.listKind === "message") {
            writeMessage(field.message, item as Record<string, unknown>, out);
          } else if (field.listKind === "enum") out.text += enumText(field.enum, item as number);
          else writeScalar(plan, field.scalar, item, out);
        }
        out.text += "]";
        break;
      }
      case "map": {
        out.text += "{";
        let i = 0;
        for (const [k, item] of Object.entries(value as Record<string, unknown>)) {
          out.text += `${i++ > 0 ? "," : ""}${JSON.stringify(k)}:`;
          if (field.mapKind === "message") {
            writeMessage(field.message, item as Record<string, unknown>, out);
          } else if (field.mapKind === "enum") out.text += enumText(field.enum, item as number);
          else writeScalar(plan, field.scalar, item, out);
        }
        out.text += "}";
        break;
      }
    }
  }
  out.text += "}";
}

/** protobuf-es's JSON for an enum value: its name, or the number when unknown. */
function enumText(desc: DescEnum, value: number): string {
  const known = desc.values.find((v) => v.number === value);
  return known ? JSON.stringify(known.name) : String(value);
}

function writeScalar(plan: FieldPlan, scalar: ScalarType, value: unknown, out: JsonOut): void {
  const { field } = plan;
  if (plan.goInt && !(typeof value === "number" && Number.isSafeInteger(value))) {
    throw new InvalidArgumentError(
      `Cannot send ${field.parent.name}.${field.jsonName} = ${value}: it is a Go int on the ` +
        `daemon; pass an integer between -${Number.MAX_SAFE_INTEGER} and ` +
        `${Number.MAX_SAFE_INTEGER} (2^53 - 1)`,
    );
  }
  switch (scalar) {
    case ScalarType.STRING:
      out.text += JSON.stringify(value);
      return;
    case ScalarType.BYTES:
      out.text += '"';
      out.bytes(value as Uint8Array);
      out.text += '"';
      return;
    case ScalarType.BOOL:
      out.text += value ? "true" : "false";
      return;
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      if (!Number.isFinite(value)) {
        throw new InvalidArgumentError(
          `Cannot send ${field.parent.name}.${field.name} = ${value}: modeld's JSON codec has no ` +
            "NaN or Infinity; pass a finite number",
        );
      }
      out.text += JSON.stringify(value);
      return;
    default:
      // Integers of every width, 64-bit ones (bigint) bare as Go writes them.
      out.text += String(value);
  }
}

const BASE64 = utf8Encoder.encode(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
);
const PAD = 0x3d; // "="

function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4;
}

/** Bytes per native base64 step: a multiple of 3, so only the last step pads. */
const BASE64_STEP = 3 * 16 * 1024;
const nativeBase64 = typeof (Uint8Array.prototype as { toBase64?: unknown }).toBase64 ===
  "function";

/**
 * Writes `src` as padded standard base64 into `dst` at `at`; returns the end.
 * V8's own `toBase64` is 2-4x faster than the loop below (a 4 MiB push frame:
 * 4.5-8.7 ms against 14-18 ms); it runs on 48 KiB views, so its strings are
 * small, short-lived garbage, never a 5.6 MB string per frame.
 */
function base64Into(src: Uint8Array, dst: Uint8Array, at: number): number {
  if (nativeBase64 && src.length > BASE64_STEP) {
    for (let i = 0; i < src.length; i += BASE64_STEP) {
      const text = (src.subarray(i, i + BASE64_STEP) as unknown as { toBase64(): string })
        .toBase64();
      at += utf8Encoder.encodeInto(text, dst.subarray(at)).written;
    }
    return at;
  }
  const whole = src.length - src.length % 3;
  let i = 0;
  for (; i < whole; i += 3) {
    const v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2];
    dst[at] = BASE64[v >>> 18];
    dst[at + 1] = BASE64[(v >>> 12) & 63];
    dst[at + 2] = BASE64[(v >>> 6) & 63];
    dst[at + 3] = BASE64[v & 63];
    at += 4;
  }
  const rest = src.length - whole;
  if (rest > 0) {
    const v = (src[i] << 16) | (rest === 2 ? src[i + 1] << 8 : 0);
    dst[at] = BASE64[v >>> 18];
    dst[at + 1] = BASE64[(v >>> 12) & 63];
    dst[at + 2] = rest === 2 ? BASE64[(v >>> 6) & 63] : PAD;
    dst[at + 3] = PAD;
    at += 4;
  }
  return at;
}

/**
 * Quotes every integer literal in JSON `text` that a JS number cannot hold
 * exactly (beyond ±2^53-1), leaving strings and other numbers untouched.
 * protobuf-es reads a quoted integer into an int64 field exactly.
 *
 * @param text JSON text as Go wrote it.
 * @returns The same JSON with unsafe integers quoted.
 *
 * @example
 * ```ts
 * import { quoteUnsafeIntegers } from "./go_json.ts";
 * console.assert(
 *   quoteUnsafeIntegers('{"generation":18446744073709551615,"n":5}') ===
 *     '{"generation":"18446744073709551615","n":5}',
 * );
 * ```
 */
export function quoteUnsafeIntegers(text: string): string {
  // Fast path: no run of 16+ digits means no integer can exceed 2^53.
  if (!/\d{16}/.test(text)) return text;
  let out = "";
  let last = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) {
          i++;
          break;
        } else i++;
      }
      continue;
    }
    if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (
          (d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b ||
          d === 0x2d
        ) i++;
        else break;
      }
      const literal = text.slice(start, i);
      if (INTEGER_TEXT.test(literal) && !Number.isSafeInteger(Number(literal))) {
        out += text.slice(last, start) + `"${literal}"`;
        last = i;
      }
      continue;
    }
    i++;
  }
  return last === 0 ? text : out + text.slice(last);
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/**
 * Where a decoded request breaks Go's `int` rules, the way Go's
 * `json.Unmarshal` would refuse it: a `go_int` field holding a fraction, an
 * exponent beyond int64, or a quoted number. Servers written in TypeScript
 * (the test daemon) call it on the parsed JSON, after
 * {@linkcode quoteUnsafeIntegers}, before protobuf-es reads it as a double.
 *
 * @param desc The message descriptor of `json`.
 * @param json The parsed request.
 * @returns Go's error text, e.g. `json: cannot unmarshal number 1.5 into Go
 *   struct field Config.NumCtx of type int`, or `undefined` when it is fine.
 *
 * @example
 * ```ts
 * import { ConfigSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
 * import { goIntProblem } from "./go_json.ts";
 * console.assert(goIntProblem(ConfigSchema, { NumCtx: 4096 }) === undefined);
 * console.assert(goIntProblem(ConfigSchema, { NumCtx: 1.5 })?.includes("of type int"));
 * ```
 */
export function goIntProblem(desc: DescMessage, json: JsonValue): string | undefined {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return undefined;
  for (const [key, value] of Object.entries(json)) {
    // Go matches keys case-insensitively.
    const field = desc.fields.find((f) => f.jsonName.toLowerCase() === key.toLowerCase());
    if (!field || value === null || value === undefined) continue;
    const where = `${desc.name}.${field.jsonName}`;
    const check = (v: JsonValue): string | undefined => {
      if (v === null || !isGoInt(field)) return undefined;
      if (typeof v === "number") {
        if (Number.isInteger(v) && Number.isFinite(v) && Number.isSafeInteger(v)) return undefined;
        return `json: cannot unmarshal number ${v} into Go struct field ${where} of type int`;
      }
      // quoteUnsafeIntegers quoted integers beyond 2^53; Go takes them up to int64.
      if (typeof v === "string" && INTEGER_TEXT.test(v) && !Number.isSafeInteger(Number(v))) {
        const n = BigInt(v);
        if (n >= INT64_MIN && n <= INT64_MAX) return undefined;
        return `json: cannot unmarshal number ${v} into Go struct field ${where} of type int`;
      }
      return `json: cannot unmarshal ${typeof v} into Go struct field ${where} of type int`;
    };
    let problem: string | undefined;
    if (field.fieldKind === "scalar") problem = check(value);
    else if (field.fieldKind === "list" && Array.isArray(value)) {
      for (const v of value) {
        problem = field.listKind === "message" ? goIntProblem(field.message, v) : check(v);
        if (problem) break;
      }
    } else if (field.fieldKind === "message") problem = goIntProblem(field.message, value);
    else if (
      field.fieldKind === "map" && field.mapKind === "message" && typeof value === "object"
    ) {
      for (const v of Object.values(value as Record<string, JsonValue>)) {
        problem = goIntProblem(field.message, v);
        if (problem) break;
      }
    }
    if (problem) return problem;
  }
  return undefined;
}
