/**
 * The modeld owner lease: the JSON file `<dataRoot>/modeld.lease` that names
 * the running daemon, its endpoint and its fencing token (`instance_id`).
 *
 * Reading side (what a client needs): {@linkcode readLease},
 * {@linkcode parseLease} and {@linkcode isLive}. The read is bounded: at most
 * {@linkcode MAX_LEASE_BYTES} bytes, regular files only (a FIFO, a device, a
 * directory or a socket named `modeld.lease` is refused before it is opened,
 * and the open file is checked again), the caller's signal and deadline honoured. A
 * file that is there but is not a lease throws {@linkcode LeaseUnreadableError}
 * naming the path; callers such as `detect()` report it as "not running", the
 * Go reader's verdict, with that error as the cause.
 *
 * Writing side (for test daemons written in TypeScript):
 * {@linkcode acquireLease} returns a {@linkcode LeaseHandle} to renew and
 * release. It follows Go's `liblease` step by step (a `mkdir` acquisition lock,
 * exclusive create through a hard link, takeover of an expired lease through an
 * atomic rename and a read-back) and writes byte-for-byte the JSON Go writes, so
 * Go and TypeScript holders exclude each other on one data root.
 *
 * @example Read the lease of the default data root
 * ```ts
 * import { isLive, readLease } from "./lease.ts";
 *
 * const root = await Deno.makeTempDir(); // e.g. the dir given to `modeld serve --data-root`
 * const lease = await readLease(root);
 * if (lease && isLive(lease)) console.log(`modeld ${lease.instanceId} at ${lease.endpoint}`);
 * ```
 *
 * @module
 */

import { join } from "./path.ts";
import {
  AbortedError,
  isPermissionError,
  LeaseUnreadableError,
  ModeldError,
  PermissionNeededError,
  TimeoutError,
} from "./errors.ts";

/**
 * The lease file name inside the data root.
 *
 * @example
 * ```ts
 * import { LEASE_FILE_NAME } from "./lease.ts";
 * console.assert(LEASE_FILE_NAME === "modeld.lease");
 * ```
 */
export const LEASE_FILE_NAME = "modeld.lease";

/**
 * The lease meta key holding the daemon's `host:port` endpoint.
 *
 * @example
 * ```ts
 * import { ENDPOINT_META_KEY } from "./lease.ts";
 * console.assert(ENDPOINT_META_KEY === "endpoint");
 * ```
 */
export const ENDPOINT_META_KEY = "endpoint";

/**
 * The lease meta key holding the daemon's backend (`llama`, `openvino`, `none`).
 *
 * @example
 * ```ts
 * import { BACKEND_META_KEY } from "./lease.ts";
 * console.assert(BACKEND_META_KEY === "backend");
 * ```
 */
export const BACKEND_META_KEY = "backend";

/** A parsed modeld lease (Go `liblease.Record`), with times decoded. */
export interface LeaseRecord {
  /** The holder's fencing token (a UUID), new on every acquisition. */
  instanceId: string;
  /** The holder's process id (informational). */
  pid: number;
  /** The holder's host name (informational). */
  host: string;
  /** When the lease was acquired, to the millisecond (Go's zero time when absent). */
  acquiredAt: Date;
  /** When the lease was last renewed, to the millisecond. */
  renewedAt: Date;
  /** `acquired_at` exactly as written ("" when absent). */
  acquiredAtText: string;
  /** `renewed_at` exactly as written. */
  renewedAtText: string;
  /** The time to live in nanoseconds, as written. */
  ttlNanos: number;
  /** The time to live in milliseconds (may have a fraction). */
  ttlMs: number;
  /** Holder-supplied discovery data (`endpoint`, `backend`); empty when absent. */
  meta: Record<string, string>;
  /** `meta.endpoint`, or "" when absent. */
  endpoint: string;
  /** `meta.backend`, or "" when absent. */
  backend: string;
  /**
   * `renewedAt + ttl`, rounded up to the next millisecond when the exact sum
   * has a sub-millisecond part, so that `now < expiresAt` is exact for a
   * millisecond clock.
   */
  expiresAt: Date;
}

// ---------------------------------------------------------------------------
// RFC 3339 times as Go writes and reads them

/** A time parsed with its full nanosecond precision. */
export interface PreciseTime {
  /** The instant, truncated to the millisecond. */
  date: Date;
  /** The fractional second in nanoseconds (0 to 999,999,999), as Go's `Nanosecond()`. */
  nanosecond: number;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Parses an RFC 3339 time the way Go's `time.Time` JSON decoder does: 0 to 9
 * (or more, truncated) fractional digits and any zone offset. Does not go
 * through `Date.parse`, which is unreliable beyond 3 fractional digits.
 *
 * @param text A time such as `2026-06-18T14:55:33.123456789+02:00`.
 * @returns The instant and its nanoseconds, or `undefined` when `text` is not a valid time.
 *
 * @example
 * ```ts
 * import { parseRfc3339 } from "./lease.ts";
 * const t = parseRfc3339("2026-06-18T14:55:33.123456789+02:00")!;
 * console.assert(t.date.toISOString() === "2026-06-18T12:55:33.123Z");
 * console.assert(t.nanosecond === 123456789);
 * ```
 */
export function parseRfc3339(text: string): PreciseTime | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const fraction = (m[7] ?? "").slice(0, 9).padEnd(9, "0");
  const nanosecond = Number(fraction);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (m[9] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  const date = new Date(0);
  // setUTCFullYear keeps years 0-99 literal (Date.UTC would map them to 19xx).
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, Math.floor(nanosecond / 1e6));
  date.setTime(date.getTime() - offsetMinutes * 60_000);
  return { date, nanosecond };
}

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Formats a time like Go's `time.RFC3339Nano` in the local zone: trailing
 * fractional zeros trimmed, `Z` for a zero offset.
 *
 * @param date The instant.
 * @param utc Write `Z` even when the local zone is not UTC.
 * @returns Text such as `2026-06-18T14:55:33.12+02:00`.
 *
 * @example
 * ```ts
 * import { formatRfc3339 } from "./lease.ts";
 * console.assert(formatRfc3339(new Date(Date.UTC(2026, 5, 18, 12, 0, 0, 120)), true) ===
 *   "2026-06-18T12:00:00.12Z");
 * ```
 */
export function formatRfc3339(date: Date, utc = false): string {
  const offset = utc ? 0 : -date.getTimezoneOffset();
  const local = new Date(date.getTime() + offset * 60_000);
  const iso = local.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ, shifted to local wall time
  const ms = iso.slice(20, 23).replace(/0+$/, "");
  let zone = "Z";
  if (offset !== 0) {
    const abs = Math.abs(offset);
    const hh = String(Math.floor(abs / 60)).padStart(2, "0");
    const mm = String(abs % 60).padStart(2, "0");
    zone = `${offset < 0 ? "-" : "+"}${hh}:${mm}`;
  }
  return `${iso.slice(0, 19)}${ms ? `.${ms}` : ""}${zone}`;
}

/** Go's zero `time.Time` (0001-01-01T00:00:00Z), used for an absent `acquired_at`. */
function goZeroTime(): Date {
  const d = new Date(0);
  d.setUTCFullYear(1, 0, 1);
  return d;
}

const MAX_DATE_MS = 8.64e15;

// ---------------------------------------------------------------------------
// Reading

/**
 * Parses the text of a lease file. Returns `undefined` for anything the Go
 * reader would reject (not JSON, truncated, wrong field types, invalid times)
 * and, stricter than Go, for a record missing `instance_id`, `renewed_at` or
 * `ttl`, or holding text no modeld writes (see {@linkcode leaseProblem}): such
 * a file cannot name a live owner. Absent `pid`, `host`, `acquired_at` and
 * `meta` take Go's zero values.
 *
 * @param text The file's content.
 * @returns The record, or `undefined` when the file is corrupt.
 *
 * @example
 * ```ts
 * import { parseLease } from "./lease.ts";
 * const rec = parseLease(`{"instance_id":"a","pid":1,"host":"h",
 *   "acquired_at":"2026-06-18T14:55:33Z","renewed_at":"2026-06-18T14:55:33Z",
 *   "ttl":30000000000,"meta":{"endpoint":"127.0.0.1:5000"}}`);
 * console.assert(rec?.endpoint === "127.0.0.1:5000" && rec.ttlMs === 30000);
 * console.assert(parseLease("{") === undefined);
 * ```
 */
export function parseLease(text: string): LeaseRecord | undefined {
  const parsed = decodeLease(text);
  return typeof parsed === "string" ? undefined : parsed;
}

/**
 * Why the text of a lease file is not a modeld lease, or `undefined` when it
 * is one. The reasons never quote the file's text (it may be huge or hold
 * terminal escapes), only what is wrong with it.
 *
 * Besides Go's own checks, it bounds what a lease may carry, since every field
 * ends up in a terminal, an error message or an HTTP/2 header: `instance_id`
 * at most {@linkcode MAX_INSTANCE_ID_CHARS} visible ASCII characters (it is sent
 * as the fence header; modeld writes a 36-character UUID), `host` and every
 * `meta` key and value at most {@linkcode MAX_LEASE_TEXT_CHARS} characters
 * without control characters.
 *
 * @param text The file's content.
 * @returns The reason, e.g. `instance_id is not a modeld instance id (…)`, or `undefined`.
 *
 * @example
 * ```ts
 * import { leaseProblem } from "./lease.ts";
 * console.assert(leaseProblem("") === "the file is empty");
 * console.assert(leaseProblem('{"instance_id":5}') === "instance_id is not a string");
 * ```
 */
export function leaseProblem(text: string): string | undefined {
  const parsed = decodeLease(text);
  return typeof parsed === "string" ? parsed : undefined;
}

/**
 * The longest `instance_id` accepted: modeld writes a 36-character UUID.
 *
 * @example
 * ```ts
 * import { MAX_INSTANCE_ID_CHARS } from "./lease.ts";
 * console.assert(crypto.randomUUID().length <= MAX_INSTANCE_ID_CHARS);
 * ```
 */
export const MAX_INSTANCE_ID_CHARS = 128;

/**
 * The longest `host` or `meta` key or value accepted (a host name is at most
 * 255 bytes, an endpoint `[host]:port` a few more).
 *
 * @example
 * ```ts
 * import { MAX_LEASE_TEXT_CHARS } from "./lease.ts";
 * console.assert(MAX_LEASE_TEXT_CHARS === 1024);
 * ```
 */
export const MAX_LEASE_TEXT_CHARS = 1024;

const INSTANCE_ID = /^[\x21-\x7e]*$/;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function textProblem(name: string, value: string): string | undefined {
  if (value.length > MAX_LEASE_TEXT_CHARS) {
    return `${name} is ${value.length} characters long, more than any lease holds (${MAX_LEASE_TEXT_CHARS})`;
  }
  if (CONTROL.test(value)) return `${name} contains control characters`;
  return undefined;
}

function decodeLease(text: string): LeaseRecord | string {
  if (text.trim() === "") return "the file is empty";
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return "the file is not JSON";
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return "the file is not a JSON object";
  }
  const obj = raw as Record<string, unknown>;
  // Go's decoder treats an explicit null like an absent key.
  const field = (key: string): unknown => obj[key] ?? undefined;

  const instanceId = field("instance_id");
  if (instanceId === undefined) return "instance_id is missing";
  if (typeof instanceId !== "string") return "instance_id is not a string";
  if (instanceId.length > MAX_INSTANCE_ID_CHARS || !INSTANCE_ID.test(instanceId)) {
    return `instance_id is not a modeld instance id (${instanceId.length} characters; ` +
      `modeld writes a UUID, at most ${MAX_INSTANCE_ID_CHARS} visible ASCII characters are accepted)`;
  }

  const pid = field("pid") ?? 0;
  if (typeof pid !== "number" || !Number.isInteger(pid)) return "pid is not an integer";
  const host = field("host") ?? "";
  if (typeof host !== "string") return "host is not a string";
  const hostProblem = textProblem("host", host);
  if (hostProblem) return hostProblem;

  const renewedText = field("renewed_at");
  if (renewedText === undefined) return "renewed_at is missing";
  if (typeof renewedText !== "string") return "renewed_at is not a string";
  const renewed = parseRfc3339(renewedText);
  if (!renewed) return "renewed_at is not an RFC 3339 time";

  const acquiredText = field("acquired_at") ?? "";
  if (typeof acquiredText !== "string") return "acquired_at is not a string";
  let acquiredAt = goZeroTime();
  if (acquiredText !== "") {
    const acquired = parseRfc3339(acquiredText);
    if (!acquired) return "acquired_at is not an RFC 3339 time";
    acquiredAt = acquired.date;
  }

  const ttlNanos = field("ttl");
  if (ttlNanos === undefined) return "ttl is missing";
  if (typeof ttlNanos !== "number" || !Number.isInteger(ttlNanos)) {
    return "ttl is not an integer number of nanoseconds";
  }

  const meta: Record<string, string> = {};
  const rawMeta = field("meta");
  if (rawMeta !== undefined) {
    if (typeof rawMeta !== "object" || Array.isArray(rawMeta)) return "meta is not an object";
    for (const [k, v] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (v === null) continue; // Go leaves a null map value as ""; drop it.
      if (typeof v !== "string") return "a meta value is not a string";
      const problem = textProblem("a meta key", k) ?? textProblem(`meta value of a key`, v);
      if (problem) return problem;
      meta[k] = v;
    }
  }

  return {
    instanceId,
    pid,
    host,
    acquiredAt,
    renewedAt: renewed.date,
    acquiredAtText: acquiredText,
    renewedAtText: renewedText,
    ttlNanos,
    ttlMs: ttlNanos / 1e6,
    meta,
    endpoint: meta[ENDPOINT_META_KEY] ?? "",
    backend: meta[BACKEND_META_KEY] ?? "",
    expiresAt: expiry(renewed, ttlNanos),
  };
}

/** `renewed + ttl`, rounded up to the millisecond, clamped to the Date range. */
function expiry(renewed: PreciseTime, ttlNanos: number): Date {
  const ttlRem = ((ttlNanos % 1e6) + 1e6) % 1e6;
  const ttlWholeMs = (ttlNanos - ttlRem) / 1e6;
  const subMs = (renewed.nanosecond % 1e6) + ttlRem; // 0 .. < 2e6
  const ms = renewed.date.getTime() + ttlWholeMs + Math.ceil(subMs / 1e6);
  return new Date(Math.max(-MAX_DATE_MS, Math.min(MAX_DATE_MS, ms)));
}

/**
 * Whether the lease is live at `now`: `now < renewed_at + ttl` (strictly), the
 * rule the Go probe uses. There is no clock-skew allowance.
 *
 * @param rec The lease record.
 * @param now The time to judge at.
 * @returns True when the holder is still within its time to live.
 *
 * @example
 * ```ts
 * import { isLive, parseLease } from "./lease.ts";
 * const rec = parseLease(`{"instance_id":"a","renewed_at":"2026-01-01T00:00:00Z","ttl":1000000000}`)!;
 * console.assert(isLive(rec, new Date("2026-01-01T00:00:00.999Z")));
 * console.assert(!isLive(rec, new Date("2026-01-01T00:00:01Z")));
 * ```
 */
export function isLive(rec: LeaseRecord, now: Date = new Date()): boolean {
  return now.getTime() < rec.expiresAt.getTime();
}

/**
 * The path of the lease file in a data root.
 *
 * @param dataRoot The data root directory.
 * @returns `<dataRoot>/modeld.lease`.
 *
 * @example
 * ```ts
 * import { leasePath } from "./lease.ts";
 * console.log(leasePath("/home/me/.contenox")); // /home/me/.contenox/modeld.lease
 * ```
 */
export function leasePath(dataRoot: string): string {
  return join(dataRoot, LEASE_FILE_NAME);
}

/** Options for {@linkcode readLease}. */
export interface ReadLeaseOptions {
  /** Aborts the read ({@linkcode AbortedError}; a `TimeoutError` reason gives {@linkcode TimeoutError}). */
  signal?: AbortSignal;
  /** A deadline for the read in milliseconds ({@linkcode TimeoutError}). */
  timeoutMs?: number;
}

/**
 * The largest lease file read, 64 KiB. modeld writes about 300 bytes (a UUID,
 * a pid, a host name, two times, a ttl, an endpoint and a backend); even a
 * 255-byte host name and a long IPv6 endpoint stay under 1 KiB. 64 KiB leaves
 * room for any future meta keys while keeping a hostile or mistaken file (a
 * 50 MB log, `/dev/zero`) from costing more than one small buffer. Go's reader
 * has no limit; it refuses such files only because they do not parse.
 *
 * @example
 * ```ts
 * import { MAX_LEASE_BYTES } from "./lease.ts";
 * console.assert(MAX_LEASE_BYTES === 65536);
 * ```
 */
export const MAX_LEASE_BYTES = 64 * 1024;

/**
 * Reads and parses `<dataRoot>/modeld.lease`, reading it once and at most
 * {@linkcode MAX_LEASE_BYTES} bytes of it. A missing file (or a dangling
 * symlink) gives `undefined`. A file that is there but is not a lease throws
 * {@linkcode LeaseUnreadableError} with the path and the reason: a directory,
 * FIFO, device or socket (checked with `stat` before opening, and again on the
 * open file; only a FIFO swapped in between the two could make the open wait), a
 * file larger than {@linkcode MAX_LEASE_BYTES}, text that is not a lease (see
 * {@linkcode leaseProblem}), or an I/O error. Symlinks are followed, as Go does.
 * Needs `--allow-read` on the data root; without it, throws
 * {@linkcode PermissionNeededError} instead of prompting.
 *
 * @param dataRoot The data root directory.
 * @param options An abort signal and a deadline.
 * @returns The record, or `undefined` when there is no lease file.
 * @throws {LeaseUnreadableError} When the file is there but is not a lease.
 * @throws {PermissionNeededError} When `--allow-read=<dataRoot>` was not granted.
 * @throws {AbortedError} When the signal aborted the read.
 * @throws {TimeoutError} When `timeoutMs` passed, or the signal's reason is a `TimeoutError`.
 *
 * @example
 * ```ts
 * import { readLease } from "@contenox/modeldconn";
 * const rec = await readLease(await Deno.makeTempDir(), { timeoutMs: 1000 });
 * console.log(rec ? `instance ${rec.instanceId}` : "no lease");
 * ```
 */
export async function readLease(
  dataRoot: string,
  options: ReadLeaseOptions = {},
): Promise<LeaseRecord | undefined> {
  const path = leasePath(dataRoot);
  const purpose = "read the modeld lease";
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") {
    throw new PermissionNeededError("--allow-read", dataRoot, purpose);
  }
  using deadline = new ReadDeadline(path, options);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readBounded(path, deadline);
  } catch (err) {
    if (err instanceof ModeldError) throw err;
    if (isPermissionError(err)) {
      throw new PermissionNeededError("--allow-read", dataRoot, purpose, { cause: err });
    }
    throw new LeaseUnreadableError(path, (err as Error).message ?? String(err), { cause: err });
  }
  if (bytes === undefined) return undefined;
  const parsed = decodeLease(new TextDecoder().decode(bytes));
  if (typeof parsed === "string") {
    throw new LeaseUnreadableError(path, `not a modeld lease: ${parsed}`);
  }
  return parsed;
}

/**
 * A cheap fingerprint of `<dataRoot>/modeld.lease` from one `stat` (symlinks
 * followed, as the read does): device, inode, size, and modification, change
 * and birth times. A new lease changes it: liblease renames a new file over
 * the lease (new inode, new birth time) and a rewrite in place moves the
 * modification time. A client that keeps the parsed lease re-reads the file
 * only when the stamp changed. Deno gives the modification and birth times to
 * the millisecond and the change time to the second, so a rewrite in place of
 * the same size within the same millisecond (or one that sets the
 * modification time back) can look unchanged; the client also re-reads after
 * a call failed on a lost connection or a refused fence, which is how such a
 * replacement shows once the old owner stops serving.
 *
 * @param dataRoot The data root directory.
 * @param options An abort signal and a deadline.
 * @returns The stamp, or `undefined` when the file is missing, cannot be
 *   stat'ed or may not be read (the read then says why).
 * @throws {AbortedError} When the signal aborted the stat.
 * @throws {TimeoutError} When `timeoutMs` passed.
 *
 * @example
 * ```ts
 * import { leaseStamp } from "./lease.ts";
 * const root = await Deno.makeTempDir();
 * console.assert(await leaseStamp(root) === undefined); // no lease yet
 * ```
 */
export async function leaseStamp(
  dataRoot: string,
  options: ReadLeaseOptions = {},
): Promise<string | undefined> {
  const path = leasePath(dataRoot);
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return undefined;
  let info: Deno.FileInfo;
  try {
    if (options.signal === undefined && options.timeoutMs === undefined) {
      // Synchronous: an async stat is handed to a thread pool and back, which
      // cost 30-40 µs per call here, a fifth of a whole Health call. One
      // local stat blocks for a few µs. A caller with a signal or deadline
      // keeps the async stat (a hung network mount cannot be interrupted).
      info = Deno.statSync(path);
    } else {
      using deadline = new ReadDeadline(path, options);
      info = await deadline.run(Deno.stat(path));
    }
  } catch (err) {
    if (err instanceof ModeldError) throw err; // aborted or past the deadline
    return undefined;
  }
  const ms = (d: Date | null) => d?.getTime() ?? "";
  return `${info.dev}:${info.ino}:${info.size}:${ms(info.mtime)}:${ms(info.ctime)}:${
    ms(info.birthtime)
  }`;
}

/** The caller's signal and deadline for one lease read; every await goes through it. */
class ReadDeadline implements Disposable {
  readonly #path: string;
  readonly #signal?: AbortSignal;
  readonly #stopped: Promise<never>;
  #timer?: ReturnType<typeof setTimeout>;
  #timedOut = false;
  #stop!: (err: ModeldError) => void;

  constructor(path: string, options: ReadLeaseOptions) {
    this.#path = path;
    this.#signal = options.signal;
    this.#stopped = new Promise<never>((_, reject) => this.#stop = reject);
    this.#stopped.catch(() => {}); // observed through run()
    // The read itself listens (handleEvent), not a closure: see GrpcCall.
    this.#signal?.addEventListener("abort", this, { once: true });
    const ms = options.timeoutMs;
    if (ms !== undefined && Number.isFinite(ms)) {
      this.#timer = setTimeout(() => {
        this.#timedOut = true;
        this.handleEvent();
      }, Math.max(0, ms));
    }
  }

  /** The caller's signal fired (or the deadline passed). */
  handleEvent(): void {
    this.#stop(this.#error());
  }

  #error(): ModeldError {
    const what = `Reading the modeld lease ${this.#path}`;
    const reason = this.#signal?.aborted ? this.#signal.reason : undefined;
    if (this.#timedOut || (reason instanceof DOMException && reason.name === "TimeoutError")) {
      return new TimeoutError(what, { cause: reason });
    }
    return new AbortedError(what, { cause: reason });
  }

  /** Throws when aborted or past the deadline. */
  check(): void {
    if (this.#timedOut || this.#signal?.aborted) throw this.#error();
  }

  /**
   * Awaits `op`, or stops at the abort or deadline. An abandoned `op` still
   * settles in the background; `orphan` disposes of its result then.
   */
  async run<T>(op: Promise<T>, orphan?: (value: T) => void): Promise<T> {
    this.check();
    let abandoned = false;
    op.then((v) => abandoned && orphan?.(v), () => {});
    try {
      return await Promise.race([op, this.#stopped]);
    } catch (err) {
      abandoned = true;
      throw err;
    }
  }

  [Symbol.dispose](): void {
    // Only when set: Deno loads its timers (node:timers, about 5 ms) on first use.
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#signal?.removeEventListener("abort", this);
  }
}

/** What kind of non-regular file `info` is, in words. */
function fileKind(
  info: { isDirectory: boolean; isFile: boolean } & Partial<Deno.FileInfo>,
): string {
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO (named pipe)";
  if (info.isCharDevice) return "a character device";
  if (info.isBlockDevice) return "a block device";
  if (info.isSocket) return "a socket";
  return "not a regular file";
}

function isNotFound(err: unknown): boolean {
  return err instanceof Deno.errors.NotFound ||
    (err as { code?: string } | null)?.code === "ENOENT";
}

/**
 * The file's bytes (at most MAX_LEASE_BYTES), `undefined` when it does not
 * exist. Refuses anything but a regular file before reading it.
 */
async function readBounded(path: string, deadline: ReadDeadline): Promise<Uint8Array | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await deadline.run(Deno.lstat(path));
    if (info.isSymlink) info = await deadline.run(Deno.stat(path)); // Go follows symlinks
  } catch (err) {
    if (isNotFound(err)) return undefined; // no file, or a dangling symlink
    throw err;
  }
  const refuse = (kind: string) =>
    new LeaseUnreadableError(path, `it is ${kind}, not a lease file`);
  if (!info.isFile) throw refuse(fileKind(info));
  const tooLarge = (size: number | string) =>
    new LeaseUnreadableError(
      path,
      `it is ${size} bytes, larger than any lease (at most ${MAX_LEASE_BYTES} bytes are read)`,
    );
  if (info.size > MAX_LEASE_BYTES) throw tooLarge(info.size);

  // The file may have been swapped for something else since stat(): the open
  // file is checked again. Deno.open has no O_NONBLOCK, so a FIFO swapped in
  // within that window would block the open until a writer comes (the caller's
  // signal and deadline still end the wait); node:fs could pass the flag, but
  // loading it costs more than all of the client's own start-up (issue 10).
  let file: Deno.FsFile;
  try {
    file = await deadline.run(Deno.open(path, { read: true }), (f) => closeQuietly(f));
  } catch (err) {
    if (isNotFound(err)) return undefined; // removed since stat()
    throw err;
  }
  try {
    const opened = await deadline.run(file.stat());
    if (!opened.isFile) throw refuse(fileKind(opened));
    // One byte more than the cap tells a file that grew since stat().
    const buffer = new Uint8Array(MAX_LEASE_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const read = await deadline.run(file.read(buffer.subarray(length)));
      if (!read) break; // end of file
      length += read;
    }
    if (length > MAX_LEASE_BYTES) throw tooLarge(`more than ${MAX_LEASE_BYTES}`);
    return buffer.subarray(0, length);
  } finally {
    closeQuietly(file);
  }
}

function closeQuietly(file: Deno.FsFile): void {
  try {
    file.close();
  } catch { /* already closed */ }
}

// ---------------------------------------------------------------------------
// Writing (test daemons)

/**
 * A live lease is held by another instance, or this instance lost a takeover
 * race. Code `not_owner`: the caller is not, and cannot become, the owner now.
 *
 * @example
 * ```ts
 * import { acquireLease, LeaseHeldError } from "./lease.ts";
 * const root = await Deno.makeTempDir();
 * await using first = await acquireLease(root, { ttlMs: 30_000 });
 * try {
 *   await acquireLease(root, { ttlMs: 30_000 });
 * } catch (err) {
 *   if (err instanceof LeaseHeldError) console.assert(err.holder?.instanceId === first.instanceId);
 * }
 * ```
 */
export class LeaseHeldError extends ModeldError {
  /** The record of the current holder, when it could be read. */
  readonly holder?: LeaseRecord;

  /**
   * @param message What happened.
   * @param holder The current holder's record.
   */
  constructor(message: string, holder?: LeaseRecord) {
    super("not_owner", message, { retryable: true });
    if (holder) this.holder = holder;
  }
}

/**
 * The lease was taken over by another instance, removed, or expired before it
 * was renewed: the handle no longer owns the data root. Code `not_owner`.
 *
 * @example
 * ```ts
 * import { LeaseLostError } from "./lease.ts";
 * const err = new LeaseLostError("Cannot renew the modeld lease: now held by b");
 * console.assert(err.code === "not_owner");
 * ```
 */
export class LeaseLostError extends ModeldError {
  /**
   * @param message What happened.
   * @param options The cause.
   */
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("not_owner", message, options);
  }
}

/**
 * The acquisition lock (`modeld.lease.acquire.lock`) stayed taken for the whole
 * wait, or the wait was aborted. Code `timeout`, retryable.
 *
 * @example
 * ```ts
 * import { LeaseLockTimeoutError } from "./lease.ts";
 * console.assert(new LeaseLockTimeoutError("/tmp/root").retryable);
 * ```
 */
export class LeaseLockTimeoutError extends ModeldError {
  /**
   * @param dataRoot The data root whose lock could not be taken.
   * @param options The cause (the abort reason, when aborted).
   */
  constructor(dataRoot: string, options: { cause?: unknown } = {}) {
    super(
      "timeout",
      `Cannot take the modeld lease lock in ${dataRoot}: timed out waiting for the acquisition lock`,
      { ...options, retryable: true },
    );
  }
}

/** Options for {@linkcode acquireLease}. */
export interface AcquireLeaseOptions {
  /** The time to live in milliseconds; renew well before it (modeld renews every ttl/3). */
  ttlMs: number;
  /** Discovery data, e.g. `{ endpoint: "127.0.0.1:5000", backend: "none" }`. Empty values are dropped. */
  meta?: Record<string, string>;
  /** How long to wait for the acquisition lock (default 30 000 ms, as Go). */
  lockTimeoutMs?: number;
  /** Aborts the wait for the acquisition lock. */
  signal?: AbortSignal;
}

/** A held lease. Renew it before its ttl runs out; release it on shutdown. */
export interface LeaseHandle extends AsyncDisposable {
  /** The fencing token this handle owns. */
  readonly instanceId: string;
  /** The record as last written by this handle. */
  readonly record: LeaseRecord;
  /**
   * Extends the lease by another ttl from now.
   *
   * @throws {LeaseLostError} When the file now names another instance, is gone, or the lease already expired.
   */
  renew(): Promise<void>;
  /** Removes the lease file if it is still ours; a missing file is fine. Safe to call twice. */
  release(): Promise<void>;
  /** Whether the lease has lapsed since the last successful renew (stop serving if so). */
  expired(now?: Date): boolean;
}

const LOCK_SUFFIX = ".acquire.lock";
const LOCK_STALE_MS = 5_000;
const LOCK_TIMEOUT_MS = 30_000;

/**
 * Acquires the modeld lease on `dataRoot` the way Go's `liblease.Acquire`
 * does, so a Go modeld and a TypeScript test daemon exclude each other: free →
 * create it; held by a live instance → {@linkcode LeaseHeldError}; expired or
 * corrupt → take it over with a new instance id. Needs `--allow-read` and
 * `--allow-write` on the data root (which must exist); `--allow-sys=hostname`
 * is used when granted, else `host` is written empty.
 *
 * @param dataRoot The data root directory.
 * @param options The ttl, meta, and lock wait bounds.
 * @returns A handle to renew and release the lease.
 * @throws {LeaseHeldError} When another instance holds a live lease.
 * @throws {LeaseLockTimeoutError} When the acquisition lock stayed taken.
 * @throws {PermissionNeededError} When read or write access to the data root is missing.
 *
 * @example
 * ```ts
 * import { acquireLease } from "./lease.ts";
 * const root = await Deno.makeTempDir();
 * await using lease = await acquireLease(root, {
 *   ttlMs: 30_000,
 *   meta: { endpoint: "127.0.0.1:5000", backend: "none" },
 * });
 * const timer = setInterval(() => lease.renew(), 10_000); // modeld renews every ttl/3
 * // ... serve ...
 * clearInterval(timer);
 * ```
 */
export async function acquireLease(
  dataRoot: string,
  options: AcquireLeaseOptions,
): Promise<LeaseHandle> {
  const { ttlMs } = options;
  if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) {
    throw new ModeldError(
      "invalid_argument",
      "Cannot acquire the modeld lease: ttl must be positive",
    );
  }
  checkWriterPermissions(dataRoot);
  const path = leasePath(dataRoot);
  const unlock = await lock(dataRoot, ttlMs, options);
  try {
    const now = new Date();
    const fields: LeaseFields = {
      instanceId: crypto.randomUUID(),
      pid: Deno.pid,
      host: hostname(),
      acquiredAt: now,
      renewedAt: now,
      ttlNanos: Math.round(ttlMs * 1e6),
      meta: options.meta ?? {},
    };
    const text = serializeLease(fields);
    if (await tryCreate(dataRoot, path, text)) return new Lease(dataRoot, fields);

    const current = await readRecord(path);
    if (current && !writerExpired(current, new Date())) {
      throw new LeaseHeldError(
        `Cannot acquire the modeld lease: held by instance ${current.instanceId} ` +
          `(pid ${current.pid}) until ${formatRfc3339(current.expiresAt)}`,
        current,
      );
    }
    await writeRecord(dataRoot, path, text);
    const after = await readRecord(path);
    if (after?.instanceId !== fields.instanceId) {
      throw new LeaseHeldError(
        `Cannot acquire the modeld lease: lost takeover race to instance ${after?.instanceId}`,
        after,
      );
    }
    return new Lease(dataRoot, fields);
  } finally {
    await unlock();
  }
}

/** The fields a writer owns; times are kept as Dates and written in Go's format. */
interface LeaseFields {
  instanceId: string;
  pid: number;
  host: string;
  acquiredAt: Date;
  renewedAt: Date;
  ttlNanos: number;
  meta: Record<string, string>;
}

/**
 * Serializes lease fields exactly as Go's `json.MarshalIndent(rec, "", "  ")`:
 * Go's key order, integer nanoseconds for `ttl`, sorted `meta` keys with empty
 * values dropped and `meta` omitted when empty, Go's HTML-safe escapes, no
 * trailing newline.
 */
function serializeLease(fields: LeaseFields): string {
  const meta: Record<string, string> = {};
  for (const key of Object.keys(fields.meta).sort()) {
    if (fields.meta[key] !== "") meta[key] = fields.meta[key];
  }
  const doc: Record<string, unknown> = {
    instance_id: fields.instanceId,
    pid: fields.pid,
    host: fields.host,
    acquired_at: formatRfc3339(fields.acquiredAt),
    renewed_at: formatRfc3339(fields.renewedAt),
    ttl: fields.ttlNanos,
  };
  if (Object.keys(meta).length > 0) doc.meta = meta;
  // Go escapes these inside strings; they occur nowhere else in JSON text.
  return JSON.stringify(doc, null, 2).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

class Lease implements LeaseHandle {
  #dataRoot: string;
  #fields: LeaseFields;
  #record: LeaseRecord;

  constructor(dataRoot: string, fields: LeaseFields) {
    this.#dataRoot = dataRoot;
    this.#fields = fields;
    this.#record = parseLease(serializeLease(fields))!;
  }

  get instanceId(): string {
    return this.#fields.instanceId;
  }

  get record(): LeaseRecord {
    return this.#record;
  }

  expired(now: Date = new Date()): boolean {
    return writerExpired(this.#record, now);
  }

  async renew(): Promise<void> {
    const path = leasePath(this.#dataRoot);
    const unlock = await lock(this.#dataRoot, this.#record.ttlMs, {});
    try {
      const current = await readRecord(path);
      if (current?.instanceId !== this.instanceId) {
        throw new LeaseLostError(
          current
            ? `Cannot renew the modeld lease: now held by ${current.instanceId}`
            : "Cannot renew the modeld lease: the lease file is gone or corrupt",
        );
      }
      const now = new Date();
      if (this.expired(now)) {
        throw new LeaseLostError("Cannot renew the modeld lease: it expired before renewal");
      }
      const fields = { ...this.#fields, renewedAt: now };
      await writeRecord(this.#dataRoot, path, serializeLease(fields));
      this.#fields = fields;
      this.#record = parseLease(serializeLease(fields))!;
    } finally {
      await unlock();
    }
  }

  async release(): Promise<void> {
    const path = leasePath(this.#dataRoot);
    const unlock = await lock(this.#dataRoot, this.#record.ttlMs, {});
    try {
      const current = await readRecord(path);
      // Missing, corrupt or taken over: not ours to remove.
      if (current?.instanceId !== this.instanceId) return;
      await Deno.remove(path).catch((err) => {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      });
    } finally {
      await unlock();
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

/** Go's writer-side rule: expired once `now` is strictly after the expiry. */
function writerExpired(rec: LeaseRecord, now: Date): boolean {
  return now.getTime() > rec.expiresAt.getTime();
}

function checkWriterPermissions(dataRoot: string): void {
  const purpose = "write the modeld lease";
  for (const name of ["read", "write"] as const) {
    if (Deno.permissions.querySync({ name, path: dataRoot }).state !== "granted") {
      throw new PermissionNeededError(`--allow-${name}` as "--allow-read", dataRoot, purpose);
    }
  }
}

function hostname(): string {
  if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state !== "granted") return "";
  try {
    return Deno.hostname();
  } catch {
    return "";
  }
}

/** The writer's read: bounded like a reader's; a file that is not a lease is no lease (Go takes it over). */
async function readRecord(path: string): Promise<LeaseRecord | undefined> {
  using deadline = new ReadDeadline(path, {});
  try {
    const bytes = await readBounded(path, deadline);
    return bytes && parseLease(new TextDecoder().decode(bytes));
  } catch (err) {
    if (err instanceof LeaseUnreadableError) return undefined;
    throw err;
  }
}

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function writeTemp(dataRoot: string, text: string): Promise<string> {
  const tmp = join(dataRoot, `.lease-${randomSuffix()}.tmp`);
  await Deno.writeTextFile(tmp, text, { createNew: true, mode: 0o600 });
  return tmp;
}

async function removeQuietly(path: string): Promise<void> {
  await Deno.remove(path).catch(() => {});
}

/** Exclusive create: hard-link a temp file to the lease path; false when it exists. */
async function tryCreate(dataRoot: string, path: string, text: string): Promise<boolean> {
  const tmp = await writeTemp(dataRoot, text);
  try {
    await Deno.link(tmp, path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) return false;
    throw err;
  } finally {
    await removeQuietly(tmp);
  }
}

/** Atomic replace: write a temp file and rename it over the lease path. */
async function writeRecord(dataRoot: string, path: string, text: string): Promise<void> {
  const tmp = await writeTemp(dataRoot, text);
  try {
    await Deno.rename(tmp, path);
  } finally {
    await removeQuietly(tmp);
  }
}

/**
 * Takes the acquisition lock directory `<dataRoot>/modeld.lease.acquire.lock`
 * like Go's liblease: `mkdir` it, polling every millisecond while it exists,
 * removing it when its mtime is older than `min(5 s, ttl)` (at least 100 ms).
 */
async function lock(
  dataRoot: string,
  ttlMs: number,
  options: { lockTimeoutMs?: number; signal?: AbortSignal },
): Promise<() => Promise<void>> {
  const lockPath = leasePath(dataRoot) + LOCK_SUFFIX;
  const staleAfter = Math.max(100, Math.min(LOCK_STALE_MS, ttlMs));
  const deadline = Date.now() + (options.lockTimeoutMs ?? LOCK_TIMEOUT_MS);
  for (;;) {
    try {
      await Deno.mkdir(lockPath, { mode: 0o700 });
      return () => removeQuietly(lockPath);
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
    try {
      const info = await Deno.stat(lockPath);
      if (info.mtime && Date.now() - info.mtime.getTime() > staleAfter) {
        await removeQuietly(lockPath);
        continue;
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    if (options.signal?.aborted) {
      throw new LeaseLockTimeoutError(dataRoot, { cause: options.signal.reason });
    }
    if (Date.now() >= deadline) throw new LeaseLockTimeoutError(dataRoot);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
