/**
 * Progress of a long transfer (hashing and pushing a model file): a redrawn
 * bar with bytes, rate and ETA on a terminal, plain lines otherwise (one per
 * tenth of the way, or every few seconds, and a last one at the end).
 *
 * @example
 * ```ts
 * import { BufferSink } from "./io.ts";
 * import { Progress } from "./progress.ts";
 *
 * const sink = new BufferSink(false);
 * const progress = new Progress(sink, { label: "push m", total: 100 });
 * progress.update(50);
 * progress.finish();
 * console.assert(sink.text.split("\n").filter(Boolean).length === 2);
 * ```
 *
 * @module
 */

import type { TextSink } from "./io.ts";
import { formatBytes, formatDuration } from "./output.ts";

/**
 * Options of {@linkcode Progress}.
 *
 * @example
 * ```ts
 * import type { ProgressOptions } from "./progress.ts";
 * const options: ProgressOptions = { label: "push qwen", total: 2_400_000_000 };
 * ```
 */
export interface ProgressOptions {
  /** What is progressing, e.g. `push qwen3-4b`. */
  label: string;
  /** Total bytes, when known. */
  total?: number;
  /** The clock, in milliseconds (for tests). */
  now?: () => number;
  /** Width of the bar on a terminal, in characters (default 24). */
  barWidth?: number;
}

/**
 * A progress reporter for one transfer.
 *
 * @example
 * ```ts
 * import { BufferSink } from "./io.ts";
 * import { Progress } from "./progress.ts";
 * const tty = new BufferSink(true);
 * const p = new Progress(tty, { label: "hash", total: 10 });
 * p.update(10);
 * p.finish();
 * console.assert(tty.text.includes("100%") && tty.text.endsWith("\n"));
 * ```
 */
export class Progress {
  readonly #sink: TextSink;
  readonly #label: string;
  readonly #total: number | undefined;
  readonly #now: () => number;
  readonly #barWidth: number;
  readonly #start: number;
  #done = 0;
  #doneAt: number;
  #lastDraw = -Infinity;
  #lastStep = -1;
  #finished = false;

  /**
   * @param sink Where to draw: a bar when it is a terminal, lines otherwise.
   * @param options Label, total, clock.
   */
  constructor(sink: TextSink, options: ProgressOptions) {
    this.#sink = sink;
    this.#label = options.label;
    this.#total = options.total;
    this.#now = options.now ?? (() => performance.now());
    this.#barWidth = options.barWidth ?? 24;
    this.#start = this.#now();
    this.#doneAt = this.#start;
  }

  /**
   * Records progress and redraws when due (a terminal at most every 100 ms; a
   * line per tenth of the total or every 5 s).
   *
   * @param done Bytes done so far.
   */
  update(done: number): void {
    if (this.#finished) return;
    const now = this.#now();
    this.#done = done;
    this.#doneAt = now;
    if (this.#sink.isTerminal) {
      if (now - this.#lastDraw < 100) return;
      this.#lastDraw = now;
      this.#sink.write(`\r${this.render(now)}\x1b[K`);
      return;
    }
    const step = this.#total ? Math.floor((done / this.#total) * 10) : -1;
    if (step > this.#lastStep || now - this.#lastDraw >= 5000) {
      if (step >= 10) return; // the line for 100% comes from finish()
      this.#lastStep = Math.max(step, this.#lastStep);
      this.#lastDraw = now;
      this.#sink.write(`${this.render(now)}\n`);
    }
  }

  /** Draws the final state and ends the line. Idempotent. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const line = this.render(this.#now());
    this.#sink.write(this.#sink.isTerminal ? `\r${line}\x1b[K\n` : `${line}\n`);
  }

  /**
   * The progress text at time `now`.
   *
   * @param now The clock's time, in milliseconds.
   * @returns E.g. `push m  [######------]  48%  1.2 GiB / 2.4 GiB  85.0 MiB/s  ETA 0:14`.
   */
  render(now: number = this.#now()): string {
    const elapsed = Math.max(now - this.#start, 1);
    // The rate of the transfer itself: a finished push also waits for the daemon to store it.
    const rate = (this.#done / Math.max((this.#finished ? this.#doneAt : now) - this.#start, 1)) *
      1000;
    const parts = [this.#label];
    if (this.#total !== undefined && this.#total > 0) {
      const fraction = Math.min(this.#done / this.#total, 1);
      if (this.#sink.isTerminal) {
        const filled = Math.round(fraction * this.#barWidth);
        parts.push(`[${"#".repeat(filled)}${"-".repeat(this.#barWidth - filled)}]`);
      }
      parts.push(`${String(Math.floor(fraction * 100)).padStart(3)}%`);
      parts.push(`${formatBytes(this.#done)} / ${formatBytes(this.#total)}`);
      parts.push(`${formatBytes(Math.round(rate))}/s`);
      const eta = this.#finished
        ? `in ${formatDuration(elapsed)}`
        : `ETA ${formatDuration(rate > 0 ? ((this.#total - this.#done) / rate) * 1000 : NaN)}`;
      parts.push(eta);
    } else {
      parts.push(formatBytes(this.#done), `${formatBytes(Math.round(rate))}/s`);
    }
    return parts.join("  ");
  }
}
