/**
 * One turn on an open session, the steps every high-level call shares:
 * `buildContext` → `ensurePrefix` → `prefillSuffix` → `decode`, counting
 * {@linkcode Usage} as it goes; and {@linkcode GenerateStream}, the handle the
 * streaming calls return.
 *
 * @example
 * ```ts ignore
 * const usage = emptyUsage();
 * for await (const d of runTurn(session, messages, { decode: { maxTokens: 8 }, call: {}, usage })) {
 *   console.log(d.text);
 * }
 * ```
 *
 * @module
 */

import type { CallOptions } from "./call.ts";
import { buildContext, type ChatMessage, type ToolDefinition } from "./context.ts";
import type { DecodeDelta } from "./decode_stream.ts";
import { InvalidArgumentError } from "./errors.ts";
import type { DecodeConfigInit, Session } from "./session.ts";
import type { Usage } from "./usage.ts";

/**
 * What {@linkcode runTurn} needs besides the session and the messages.
 *
 * @example
 * ```ts ignore
 * const options: TurnOptions = { decode: { maxTokens: 16 }, call: {}, usage: emptyUsage() };
 * ```
 */
export interface TurnOptions {
  /** Tools the model may call. */
  tools?: readonly ToolDefinition[];
  /** The sampling config. */
  decode: DecodeConfigInit;
  /** Signal and timeout of every call of the turn. */
  call: CallOptions;
  /** Filled in as the turn runs. */
  usage: Usage;
}

/**
 * Runs one turn and yields the decoded deltas. Leaving the loop early
 * cancels the decode on the daemon (the session stays open).
 *
 * @param session The open session.
 * @param messages The whole conversation so far.
 * @param options Tools, sampling, call options and the usage to fill.
 * @returns The deltas.
 *
 * @example
 * ```ts ignore
 * for await (const d of runTurn(session, [{ role: "user", content: "Hi" }], opts)) console.log(d.text);
 * ```
 */
export async function* runTurn(
  session: Session,
  messages: readonly ChatMessage[],
  options: TurnOptions,
): AsyncGenerator<DecodeDelta> {
  const { usage, call } = options;
  try {
    const built = await buildContext(messages, { tools: options.tools });
    const prefix = await session.ensurePrefix(built.prefix, call);
    usage.reusedTokens = prefix.reusedTokens;
    usage.prefixPrefilledTokens = prefix.prefilledTokens;
    const suffix = await session.prefillSuffix(built.suffix, call);
    usage.suffixTokens = suffix.suffixTokens;
    usage.prefilledTokens = prefix.prefilledTokens + suffix.suffixTokens;
    usage.promptTokens = suffix.residentTokens;
    usage.stopReason = "cancelled"; // until the stream ends by itself
    for await (const delta of session.decode(options.decode, call)) {
      usage.chunks++;
      yield delta;
    }
  } catch (err) {
    usage.stopReason = "error";
    throw err;
  }
  // A decode ends quietly when the caller's signal aborts it.
  if (call.signal?.aborted) return;
  const max = options.decode.maxTokens ?? 0;
  usage.stopReason = max > 0 && usage.chunks >= max ? "max_tokens" : "end";
}

/**
 * Everything a finished generation produced.
 *
 * @example
 * ```ts ignore
 * const { text, usage } = await generate({ model: "smollm2", prompt: "Hi", dataRoot });
 * ```
 */
export interface GenerateResult {
  /** The generated text. */
  text: string;
  /** Reasoning text, when the daemon parses it out. */
  thinking: string;
  /** Tool calls the daemon parsed, in order. */
  toolCalls: DecodeDelta["toolCalls"];
  /** Token counts and the stop reason. */
  usage: Usage;
}

/**
 * A generation in progress: iterate it once for the deltas (`break` cancels
 * the decode on the daemon), or take {@linkcode GenerateStream.textStream}
 * for a `ReadableStream<string>` to pipe, or {@linkcode GenerateStream.result}
 * for everything at once. {@linkcode GenerateStream.usage} is complete when
 * the iteration ends.
 *
 * @example
 * ```ts ignore
 * import { generateStream } from "@contenox/modeldconn";
 * const stream = generateStream({ model: "smollm2", prompt: "Hi", dataRoot: "/home/me/.contenox" });
 * for await (const delta of stream) console.log(delta.text);
 * console.log(stream.usage.stopReason);
 * ```
 */
export class GenerateStream implements AsyncIterable<DecodeDelta> {
  /** Token counts so far; final once the iteration has ended. */
  readonly usage: Usage;
  readonly #run: (signal: AbortSignal) => AsyncGenerator<DecodeDelta>;
  readonly #controller = new AbortController();
  #used = false;

  /**
   * Streams come from `generateStream` and `Chat.stream`; this is for the library.
   *
   * @param usage The usage object the run fills in.
   * @param run Starts the generation, cancelled by the signal.
   */
  constructor(usage: Usage, run: (signal: AbortSignal) => AsyncGenerator<DecodeDelta>) {
    this.usage = usage;
    this.#run = run;
  }

  /**
   * Stops the generation: the daemon stops decoding; the iteration ends quietly.
   *
   * @param reason Kept as the abort reason.
   *
   * @example
   * ```ts ignore
   * setTimeout(() => stream.cancel(), 1000);
   * ```
   */
  cancel(reason?: unknown): void {
    this.#controller.abort(reason ?? new DOMException("Cancelled", "AbortError"));
  }

  /**
   * The single iteration over the deltas.
   *
   * @returns The async iterator.
   * @throws {InvalidArgumentError} When iterated a second time.
   */
  [Symbol.asyncIterator](): AsyncIterator<DecodeDelta> {
    if (this.#used) {
      throw new InvalidArgumentError(
        "Cannot iterate a generation twice: it is a single-use stream; start a new one",
      );
    }
    this.#used = true;
    return this.#run(this.#controller.signal);
  }

  /**
   * The generated text as a byte-free `ReadableStream<string>` (reasoning and
   * tool calls left out), for `pipeThrough(new TextEncoderStream())`.
   * Cancelling the stream cancels the decode.
   *
   * @returns The text stream.
   *
   * @example
   * ```ts ignore
   * await stream.textStream().pipeThrough(new TextEncoderStream())
   *   .pipeTo(Deno.stdout.writable, { preventClose: true });
   * ```
   */
  textStream(): ReadableStream<string> {
    const deltas = this[Symbol.asyncIterator]();
    return new ReadableStream<string>({
      async pull(controller) {
        while (true) {
          const next = await deltas.next();
          if (next.done) return controller.close();
          if (next.value.text !== "") return controller.enqueue(next.value.text);
        }
      },
      async cancel() {
        await deltas.return?.();
      },
    });
  }

  /**
   * Reads the whole generation.
   *
   * @returns The text, reasoning, tool calls and usage.
   *
   * @example
   * ```ts ignore
   * const { text, usage } = await stream.result();
   * ```
   */
  async result(): Promise<GenerateResult> {
    const result: GenerateResult = { text: "", thinking: "", toolCalls: [], usage: this.usage };
    for await (const delta of this) {
      result.text += delta.text;
      result.thinking += delta.thinking;
      result.toolCalls.push(...delta.toolCalls);
    }
    return result;
  }
}
