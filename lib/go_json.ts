/**
 * JSON the way Go's encoding/json writes and reads it, on top of protobuf-es
 * JSON. modeld's codec is `json.Marshal`/`json.Unmarshal` over Go structs, and
 * two details of canonical protobuf JSON break it:
 *
 * - protobuf JSON quotes 64-bit integers (`"7"`); Go rejects a quoted number
 *   for an int field. {@linkcode toGoJson} writes them bare.
 * - Go writes 64-bit integers bare, and `JSON.parse` rounds those beyond 2^53.
 *   {@linkcode quoteUnsafeIntegers} quotes them before parsing, which protobuf-es
 *   accepts for int64 fields, so they stay exact.
 * - Go `int` is 64-bit. Those fields are protobuf `double`s marked `go_int`
 *   (a JS number, any size the daemon sends, exact up to 2^53); on the way
 *   out {@linkcode toGoJson} refuses a value that is not an exact integer
 *   within ±(2^53 − 1), the largest that cannot be the rounding of another.
 *
 * @example
 * ```ts
 * import { create, toJson } from "@bufbuild/protobuf";
 * import { DecodeRequestSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
 * import { toGoJson } from "./go_json.ts";
 *
 * const req = create(DecodeRequestSchema, { handle: "h", config: { seed: 2n ** 60n } });
 * const text = toGoJson(DecodeRequestSchema, toJson(DecodeRequestSchema, req));
 * console.assert(text.includes('"Seed":1152921504606846976'));
 * ```
 *
 * @module
 */

import {
  type DescField,
  type DescMessage,
  getOption,
  type JsonValue,
  ScalarType,
} from "@bufbuild/protobuf";
import { go_int } from "../gen/contenox/transport/v1/compute_pb.ts";
import { InvalidArgumentError } from "./errors.ts";

const INT64_TYPES: ReadonlySet<ScalarType> = new Set([
  ScalarType.INT64,
  ScalarType.UINT64,
  ScalarType.SINT64,
  ScalarType.FIXED64,
  ScalarType.SFIXED64,
]);
const FLOAT_TYPES: ReadonlySet<ScalarType> = new Set([ScalarType.FLOAT, ScalarType.DOUBLE]);
const INTEGER_TEXT = /^-?\d+$/;

/**
 * Serializes a protobuf-es JSON value of message `desc` as Go's decoder wants
 * it: 64-bit integers as bare JSON numbers. NaN and infinities, which Go
 * cannot represent in JSON, are refused.
 *
 * @param desc The message descriptor of `json`.
 * @param json The value from protobuf-es `toJson(desc, message)`.
 * @returns The JSON text to send.
 * @throws {InvalidArgumentError} When a float field holds NaN or an infinity.
 *
 * @example
 * ```ts
 * import { UnloadModelRequestSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
 * import { toGoJson } from "./go_json.ts";
 * console.assert(
 *   toGoJson(UnloadModelRequestSchema, { expected_generation: "9007199254740993" }) ===
 *     '{"expected_generation":9007199254740993}',
 * );
 * ```
 */
export function toGoJson(desc: DescMessage, json: JsonValue): string {
  return writeMessage(desc, json);
}

function writeMessage(desc: DescMessage, json: JsonValue): string {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return JSON.stringify(json);
  }
  const parts: string[] = [];
  for (const [key, value] of Object.entries(json)) {
    if (value === undefined) continue;
    const field = desc.fields.find((f) => f.jsonName === key);
    parts.push(
      `${JSON.stringify(key)}:${field ? writeField(field, value) : JSON.stringify(value)}`,
    );
  }
  return `{${parts.join(",")}}`;
}

function writeField(field: DescField, value: JsonValue): string {
  switch (field.fieldKind) {
    case "scalar":
      return writeScalar(field, field.scalar, value);
    case "message":
      return writeMessage(field.message, value);
    case "list":
      if (!Array.isArray(value)) return JSON.stringify(value);
      if (field.listKind === "message") {
        return `[${value.map((v) => writeMessage(field.message, v)).join(",")}]`;
      }
      if (field.listKind === "scalar") {
        const scalar = field.scalar;
        return `[${value.map((v) => writeScalar(field, scalar, v)).join(",")}]`;
      }
      return JSON.stringify(value);
    case "map": {
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        return JSON.stringify(value);
      }
      const entries = Object.entries(value).map(([k, v]) => {
        const text = field.mapKind === "message"
          ? writeMessage(field.message, v)
          : field.mapKind === "scalar"
          ? writeScalar(field, field.scalar, v)
          : JSON.stringify(v);
        return `${JSON.stringify(k)}:${text}`;
      });
      return `{${entries.join(",")}}`;
    }
    default:
      return JSON.stringify(value);
  }
}

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

function writeScalar(field: DescField, scalar: ScalarType, value: JsonValue): string {
  if (isGoInt(field) && !(typeof value === "number" && Number.isSafeInteger(value))) {
    throw new InvalidArgumentError(
      `Cannot send ${field.parent.name}.${field.jsonName} = ${value}: it is a Go int on the ` +
        `daemon; pass an integer between -${Number.MAX_SAFE_INTEGER} and ` +
        `${Number.MAX_SAFE_INTEGER} (2^53 - 1)`,
    );
  }
  if (INT64_TYPES.has(scalar) && typeof value === "string" && INTEGER_TEXT.test(value)) {
    return value;
  }
  if (FLOAT_TYPES.has(scalar) && typeof value === "string") {
    throw new InvalidArgumentError(
      `Cannot send ${field.parent.name}.${field.name} = ${value}: modeld's JSON codec has no ` +
        "NaN or Infinity; pass a finite number",
    );
  }
  return JSON.stringify(value);
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
