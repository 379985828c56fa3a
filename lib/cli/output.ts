/**
 * What the CLI prints: human-readable text by default, JSON with `--json`
 * (one object, or one object per line for streams), and errors in either
 * form, each saying what to do next. Also the formatting helpers (bytes,
 * rates, durations) and {@linkcode toPlain}, which turns protobuf messages
 * into plain JSON-safe objects.
 *
 * @example
 * ```ts
 * import { BufferSink } from "./io.ts";
 * import { Output } from "./output.ts";
 *
 * const stdout = new BufferSink();
 * const out = new Output({ stdout, stderr: new BufferSink(), color: false }, true);
 * out.json({ ok: true, size: 5n });
 * console.assert(stdout.text === '{"ok":true,"size":5}\n');
 * ```
 *
 * @module
 */

import {
  ConnectionError,
  ContextOverflowError,
  DaemonError,
  DaemonInternalError,
  DaemonTooOldError,
  DaemonUnreachableError,
  ModelBusyError,
  ModeldError,
  ModelNotFoundError,
  TimeoutError,
} from "../errors.ts";
import { exitCodeFor } from "./exit_codes.ts";
import type { CliIo, TextSink } from "./io.ts";

/**
 * Human or JSON output over the CLI's stdout and stderr.
 *
 * @example
 * ```ts
 * import { BufferSink } from "./io.ts";
 * import { Output } from "./output.ts";
 * const stderr = new BufferSink();
 * const out = new Output({ stdout: new BufferSink(), stderr, color: false }, false);
 * out.error(new Error("boom"));
 * console.assert(stderr.text === "error: boom\n");
 * ```
 */
export class Output {
  /** Whether `--json` was given. */
  readonly isJson: boolean;
  /** Results go here. */
  readonly stdout: TextSink;
  /** Errors, notes, reasoning and stats go here. */
  readonly stderr: TextSink;
  readonly #color: boolean;

  /**
   * @param io The process's stdout, stderr and colour setting.
   * @param json Whether `--json` was given.
   */
  constructor(io: Pick<CliIo, "stdout" | "stderr" | "color">, json: boolean) {
    this.stdout = io.stdout;
    this.stderr = io.stderr;
    this.#color = io.color;
    this.isJson = json;
  }

  /**
   * Writes text to stdout as is.
   *
   * @param text The text.
   */
  write(text: string): void {
    this.stdout.write(text);
  }

  /**
   * Writes a line to stdout.
   *
   * @param text The line, without its newline.
   */
  line(text = ""): void {
    this.stdout.write(`${text}\n`);
  }

  /**
   * Writes a line to stderr.
   *
   * @param text The line, without its newline.
   */
  note(text: string): void {
    this.stderr.write(`${text}\n`);
  }

  /**
   * Writes one compact JSON object and a newline to stdout (an NDJSON line).
   *
   * @param value Any value; protobuf messages and bigints are converted with {@linkcode toPlain}.
   */
  json(value: unknown): void {
    this.stdout.write(`${JSON.stringify(toPlain(value))}\n`);
  }

  /**
   * Dims text for a terminal that allows colours.
   *
   * @param text The text.
   * @param sink Where it will be written (colour only on a terminal).
   * @returns The text, maybe wrapped in ANSI dim codes.
   */
  dim(text: string, sink: TextSink = this.stderr): string {
    return this.#color && sink.isTerminal ? `\x1b[2m${text}\x1b[22m` : text;
  }

  /**
   * Reports an error on stderr: `error: <message>` plus a `hint:` when the CLI
   * knows a better next step; with `--json`, one object
   * `{"error":{"name","code","message","hint","exitCode"}}`.
   *
   * @param err Anything thrown.
   */
  error(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const hint = hintFor(err);
    if (this.isJson) {
      this.stderr.write(
        `${
          JSON.stringify({
            error: {
              name: err instanceof Error ? err.name : "Error",
              code: err instanceof ModeldError ? err.code : undefined,
              message,
              hint,
              exitCode: exitCodeFor(err),
            },
          })
        }\n`,
      );
      return;
    }
    this.stderr.write(`error: ${message}\n`);
    if (hint) this.stderr.write(`hint: ${hint}\n`);
  }

  /** Waits for everything written to stdout and stderr. */
  async flush(): Promise<void> {
    await Promise.all([this.stdout.flush(), this.stderr.flush()]);
  }
}

/**
 * The CLI's own next step for an error whose library message does not say
 * how to fix it from the command line.
 *
 * @param err Anything thrown.
 * @returns The hint, or `undefined`.
 *
 * @example
 * ```ts
 * import { hintFor } from "./output.ts";
 * import { TimeoutError } from "@contenox/modeldconn";
 * console.assert(hintFor(new TimeoutError("Decode"))?.includes("--timeout"));
 * ```
 */
export function hintFor(err: unknown): string | undefined {
  if (err instanceof ModelNotFoundError && err.rpc === "RemoveModel") {
    return "nothing to remove: `modeldconn models ls` lists the stored models";
  }
  if (err instanceof ModelBusyError) {
    return "if the model was loaded with `modeldconn load`, free the slot with " +
      "`modeldconn unload`; otherwise wait for the session using it to end " +
      "(`modeldconn status` shows the slot)";
  }
  if (err instanceof ModelNotFoundError) {
    return "push it with `modeldconn models push FILE --name NAME`, " +
      "or pass --path with the model file's path on the daemon's host";
  }
  if (err instanceof ContextOverflowError) {
    return "pass a larger --ctx, or a shorter prompt";
  }
  if (err instanceof DaemonUnreachableError) {
    return `check that the modeld process is healthy, or restart it with ` +
      `\`modeld serve --data-root ${err.dataRoot}\``;
  }
  if (err instanceof ConnectionError) {
    return "check that modeld is still running (`modeldconn status`)";
  }
  if (err instanceof TimeoutError) {
    return "pass a longer --timeout, or check that modeld is responsive (`modeldconn status`)";
  }
  if (err instanceof DaemonTooOldError) {
    return `upgrade the contenox runtime to ${err.requiredVersion} or newer`;
  }
  if (err instanceof DaemonInternalError) {
    return "see the modeld log for details";
  }
  if (err instanceof DaemonError && err.token === "unsupported_feature") {
    return "this modeld or model does not offer it";
  }
  return undefined;
}

/**
 * Turns a value into plain JSON-safe data: protobuf messages lose their
 * `$typeName`, bigints become numbers (strings when beyond 2^53), `Date`s
 * become ISO strings, `undefined` fields are dropped.
 *
 * @param value Any value.
 * @returns Plain data for `JSON.stringify`.
 *
 * @example
 * ```ts
 * import { toPlain } from "./output.ts";
 * const plain = toPlain({ $typeName: "x.Y", n: 2n, big: 2n ** 64n });
 * console.assert(JSON.stringify(plain) === '{"n":2,"big":"18446744073709551616"}');
 * ```
 */
export function toPlain(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(toPlain);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === "$typeName" || k === "$unknown" || v === undefined) continue;
      out[k] = toPlain(v);
    }
    return out;
  }
  return value;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/**
 * Formats a byte count with binary units: `512 B`, `4.0 MiB`, `2.35 GiB`.
 *
 * @param bytes The count.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./output.ts";
 * console.assert(formatBytes(4 * 1024 * 1024) === "4.0 MiB");
 * ```
 */
export function formatBytes(bytes: number | bigint): string {
  let n = Number(bytes);
  let unit = 0;
  while (Math.abs(n) >= 1024 && unit < UNITS.length - 1) {
    n /= 1024;
    unit++;
  }
  if (unit === 0) return `${n} B`;
  return `${n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(unit >= 3 ? 2 : 1)} ${
    UNITS[unit]
  }`;
}

/**
 * Formats a duration as `m:ss` (or `h:mm:ss`).
 *
 * @param ms Milliseconds.
 * @returns The text; `--:--` when unknown or not finite.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./output.ts";
 * console.assert(formatDuration(75_000) === "1:15");
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "--:--";
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/**
 * Formats rows as left-aligned columns separated by two spaces.
 *
 * @param rows The rows, header first.
 * @returns The lines.
 *
 * @example
 * ```ts
 * import { table } from "./output.ts";
 * console.assert(table([["A", "B"], ["long", "x"]]).join("|") === "A     B|long  x");
 * ```
 */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  }
  return rows.map((row) =>
    row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ")
  );
}
