/**
 * One-off inference in one call: {@linkcode generate} returns the text,
 * {@linkcode generateStream} streams it. Each call opens a session, sends the
 * prompt, decodes and closes the session again (for multi-turn work on one
 * warm session, use `Chat`).
 *
 * @example
 * ```ts ignore
 * import { generate } from "@contenox/modeldconn";
 *
 * const { text, usage } = await generate({
 *   dataRoot: "/home/me/.contenox",
 *   model: "smollm2",
 *   prompt: "Why is the sky blue?",
 *   maxTokens: 64,
 * });
 * console.log(text, usage.stopReason);
 * ```
 *
 * @module
 */

import type { CallOptions } from "./call.ts";
import { ModeldClient } from "./client.ts";
import type { ChatMessage } from "./context.ts";
import type { DecodeDelta } from "./decode_stream.ts";
import { InvalidArgumentError } from "./errors.ts";
import { type ModelInput, resolveModel } from "./model.ts";
import type { ModelConfig, ModeldNode } from "./node.ts";
import { GenerateStream, runTurn } from "./turn.ts";
import { decodeConfigFor, emptyUsage, type SamplingOptions } from "./usage.ts";
import type { GenerateResult } from "./turn.ts";

/**
 * Which daemon the high-level API talks to: an existing client (or remote
 * node), kept open; else a new client for `dataRoot`, closed at the end.
 *
 * @example
 * ```ts
 * import type { DaemonChoice } from "@contenox/modeldconn";
 * const choice: DaemonChoice = { dataRoot: "/home/me/.contenox" };
 * ```
 */
export interface DaemonChoice {
  /** A client or node to use (not closed by the call). */
  client?: ModeldNode;
  /**
   * The data root whose lease names the daemon, for a new client. Without
   * it (and without `client`): `setDataRoot()` / `$CONTENOX_DATA_ROOT` /
   * `~/.contenox`, which needs `--allow-env=CONTENOX_DATA_ROOT,HOME`.
   */
  dataRoot?: string;
}

/**
 * Options of {@linkcode generate} and {@linkcode generateStream}.
 *
 * @example
 * ```ts
 * import type { GenerateOptions } from "@contenox/modeldconn";
 * const options: GenerateOptions = {
 *   model: "smollm2", prompt: "Hi", system: "Be terse.", maxTokens: 32, temperature: 0,
 *   dataRoot: "/home/me/.contenox", timeoutMs: 30_000,
 * };
 * ```
 */
export interface GenerateOptions extends SamplingOptions, DaemonChoice {
  /** A store name or a reference; default: the only model in the daemon's store. */
  model?: ModelInput;
  /** The user's prompt. */
  prompt: string;
  /** A system prompt. */
  system?: string;
  /** The model's load configuration (`numCtx`, …); part of its identity. */
  config?: ModelConfig;
  /** Cancels the generation; an abort during the decode ends it quietly (stop reason `"cancelled"`). */
  signal?: AbortSignal;
  /** A deadline for the whole call, in milliseconds; passing it throws `TimeoutError`. */
  timeoutMs?: number;
}

/**
 * Generates a completion and returns it whole.
 *
 * @param options Model, prompt, sampling, daemon, signal and timeout.
 * @returns The text, reasoning, tool calls and usage.
 * @throws {ModeldError} Typed: the daemon is not running, the model is not found, …
 *
 * @example
 * ```ts ignore
 * import { generate } from "@contenox/modeldconn";
 * const { text } = await generate({ model: "smollm2", prompt: "Hi", dataRoot: "/home/me/.contenox" });
 * ```
 */
export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  return await generateStream(options).result();
}

/**
 * Starts a completion and streams it: iterate the result for deltas, or take
 * `.textStream()` to pipe the text. `break` (or `cancel()`, or the signal)
 * stops the decode on the daemon. Nothing happens until it is iterated.
 *
 * @param options Model, prompt, sampling, daemon, signal and timeout.
 * @returns The single-use stream.
 *
 * @example
 * ```ts ignore
 * import { generateStream } from "@contenox/modeldconn";
 * const stream = generateStream({ model: "smollm2", prompt: "Hi", dataRoot: "/home/me/.contenox" });
 * await stream.textStream().pipeThrough(new TextEncoderStream())
 *   .pipeTo(Deno.stdout.writable, { preventClose: true });
 * ```
 */
export function generateStream(options: GenerateOptions): GenerateStream {
  if (typeof options.prompt !== "string" || options.prompt === "") {
    throw new InvalidArgumentError("Cannot generate: the prompt is empty; pass prompt");
  }
  const messages: ChatMessage[] = [];
  if (options.system) messages.push({ role: "system", content: options.system });
  messages.push({ role: "user", content: options.prompt });
  const usage = emptyUsage();
  return new GenerateStream(usage, (cancel) => run(cancel));

  async function* run(cancel: AbortSignal): AsyncGenerator<DecodeDelta> {
    using call = callOptions(options, cancel);
    const owned = options.client ? undefined : new ModeldClient({ dataRoot: options.dataRoot });
    const node = options.client ?? owned!;
    try {
      const model = await resolveModel(node, options.model, call);
      const session = await node.openSession(model, { ...call, config: options.config });
      try {
        yield* runTurn(session, messages, { decode: decodeConfigFor(options), call, usage });
      } finally {
        await session.close({ timeoutMs: 5_000 }).catch(() => {});
      }
    } finally {
      await owned?.[Symbol.asyncDispose]();
    }
  }
}

/**
 * The call options of a high-level call: the caller's signal, the stream's
 * own cancel signal, and an overall deadline. Dispose it to clear the timer.
 *
 * @param options The caller's signal and deadline.
 * @param cancel The stream's cancel signal.
 * @returns Options for every RPC of the call, disposable.
 *
 * @example
 * ```ts ignore
 * using call = callOptions({ timeoutMs: 1000 }, controller.signal);
 * await client.status(call);
 * ```
 */
export function callOptions(
  options: { signal?: AbortSignal; timeoutMs?: number },
  cancel: AbortSignal,
): CallOptions & Disposable {
  const signals = [cancel];
  if (options.signal) signals.push(options.signal);
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (options.timeoutMs !== undefined) {
    const deadline = new AbortController();
    timer = setTimeout(
      () => deadline.abort(new DOMException("Signal timed out.", "TimeoutError")),
      options.timeoutMs,
    );
    signals.push(deadline.signal);
  }
  return {
    signal: AbortSignal.any(signals),
    [Symbol.dispose]: () => clearTimeout(timer),
  };
}
