/**
 * The Decode RPC as a single-use async iterable. Leaving the loop early
 * (`break`, `return`, a thrown error) or aborting the caller's signal resets
 * the HTTP/2 stream, so the daemon stops generating and frees its model slot.
 * An abort the caller asked for ends the loop quietly; a timeout throws.
 *
 * @example
 * ```ts ignore
 * for await (const delta of session.decode({ maxTokens: 64 })) {
 *   Deno.stdout.writeSync(new TextEncoder().encode(delta.text));
 *   if (delta.text.includes("\n")) break; // cancels the rest on the daemon
 * }
 * ```
 *
 * @module
 */

import type { DecodeChunk, ToolCall } from "../gen/contenox/transport/v1/compute_pb.ts";
import { typedError } from "./call.ts";
import { fromStreamErrorChunk } from "./error_text.ts";
import { InvalidArgumentError, ModeldError, TimeoutError } from "./errors.ts";
import { isUnprocessed } from "./transport_marks.ts";

/** One piece of decoded output. Empty strings mean "nothing of that kind in this piece". */
export interface DecodeDelta {
  /** Generated text. */
  text: string;
  /** Reasoning text, when the daemon parses it out (v0.32.4+ with a reasoning parser). */
  thinking: string;
  /** Complete tool calls parsed by the daemon (v0.32.4+ with a tool parser). */
  toolCalls: ToolCall[];
}

/** Everything a finished decode produced, from {@linkcode DecodeStream.collect}. */
export interface DecodeResult {
  /** All text, concatenated. */
  text: string;
  /** All reasoning text, concatenated. */
  thinking: string;
  /** All tool calls, in order. */
  toolCalls: ToolCall[];
  /** How many chunks the daemon sent. */
  chunks: number;
}

/** Starts the RPC; called once, with the signal that cancels it. */
export type DecodeStarter = (signal: AbortSignal) => AsyncIterable<DecodeChunk>;

/**
 * A running decode. Iterate it once with `for await`; see the module docs.
 *
 * @example
 * ```ts ignore
 * const { text } = await session.decode({ maxTokens: 32 }).collect();
 * ```
 */
export class DecodeStream implements AsyncIterable<DecodeDelta> {
  readonly #start: DecodeStarter;
  readonly #signal: AbortSignal | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #endpoint: string;
  readonly #controller = new AbortController();
  #used = false;

  /**
   * Creates the instance.
   *
   * @param start Starts the Decode RPC with a cancelling signal.
   * @param options The caller's signal and timeout, and the endpoint for error messages.
   */
  constructor(
    start: DecodeStarter,
    options: { signal?: AbortSignal; timeoutMs?: number; endpoint: string },
  ) {
    this.#start = start;
    this.#signal = options.signal;
    this.#timeoutMs = options.timeoutMs;
    this.#endpoint = options.endpoint;
  }

  /**
   * Stops the decode: the daemon stops generating; an iteration in progress ends quietly.
   *
   * @param reason Why, kept as the abort reason.
   *
   * @example
   * ```ts ignore
   * const stream = session.decode({ maxTokens: 1000 });
   * setTimeout(() => stream.cancel(), 100);
   * for await (const d of stream) console.log(d.text);
   * ```
   */
  cancel(reason?: unknown): void {
    this.#controller.abort(reason);
  }

  /**
   * Reads the whole stream and returns everything it produced.
   *
   * @returns The concatenated text and thinking, and all tool calls.
   *
   * @example
   * ```ts ignore
   * const { text, chunks } = await session.decode({ maxTokens: 8 }).collect();
   * ```
   */
  async collect(): Promise<DecodeResult> {
    const result: DecodeResult = { text: "", thinking: "", toolCalls: [], chunks: 0 };
    for await (const delta of this) {
      result.text += delta.text;
      result.thinking += delta.thinking;
      result.toolCalls.push(...delta.toolCalls);
      result.chunks++;
    }
    return result;
  }

  /**
   * The single iteration over the decoded deltas.
   *
   * @returns The async iterator.
   * @throws {InvalidArgumentError} When iterated a second time.
   */
  [Symbol.asyncIterator](): AsyncIterator<DecodeDelta> {
    if (this.#used) {
      throw new InvalidArgumentError(
        "Cannot iterate a decode twice: it is a single-use stream; call decode() again",
      );
    }
    this.#used = true;
    return this.#iterate();
  }

  async *#iterate(): AsyncGenerator<DecodeDelta> {
    const signals = [this.#controller.signal];
    if (this.#signal) signals.push(this.#signal);
    if (this.#timeoutMs !== undefined && Number.isFinite(this.#timeoutMs)) {
      signals.push(AbortSignal.timeout(this.#timeoutMs));
    }
    const signal = signals.length === 1 ? signals[0] : AbortSignal.any(signals);
    if (signal.aborted) {
      // Aborted before the first iteration: send nothing.
      if (isTimeout(signal.reason)) throw new TimeoutError("Decode", { cause: signal.reason });
      return;
    }
    let chunks: AsyncIterator<DecodeChunk> | undefined;
    let ended = false;
    try {
      chunks = this.#start(signal)[Symbol.asyncIterator]();
      let received = false;
      let retried = false;
      while (true) {
        let next: IteratorResult<DecodeChunk>;
        try {
          next = await chunks.next();
        } catch (err) {
          // Never processed by the daemon (REFUSED_STREAM, above a GOAWAY's
          // last stream id): send it once more, as grpc-go does.
          if (received || retried || signal.aborted || !isUnprocessed(err)) throw err;
          retried = true;
          chunks = this.#start(signal)[Symbol.asyncIterator]();
          continue;
        }
        received = true;
        if (next.done) {
          ended = true; // the call is over: nothing to reset
          return;
        }
        const chunk = next.value;
        if (chunk.error !== "") throw fromStreamErrorChunk(chunk);
        yield { text: chunk.text, thinking: chunk.thinking, toolCalls: chunk.toolCalls };
      }
    } catch (err) {
      // An error chunk the daemon sent is reported even if the caller aborted meanwhile;
      // anything else after an abort is the abort itself.
      const fromDaemon = err instanceof ModeldError && err.code !== "aborted";
      if (signal.aborted && !fromDaemon) {
        if (isTimeout(signal.reason)) throw new TimeoutError("Decode", { cause: err });
        return; // the caller asked to stop: end quietly
      }
      throw await typedError(err, { rpc: "Decode", endpoint: this.#endpoint });
    } finally {
      // Abort before releasing the iterator: a consumer that left early (break,
      // return, throw) must reset the stream so the daemon stops generating.
      if (!ended) this.#controller.abort();
      await chunks?.return?.().catch(() => {});
    }
  }
}

function isTimeout(reason: unknown): boolean {
  return reason instanceof DOMException && reason.name === "TimeoutError";
}
