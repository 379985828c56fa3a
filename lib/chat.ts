/**
 * A multi-turn conversation on one warm session: {@linkcode Chat} keeps the
 * message history and the tools, rebuilds the context with `buildContext`
 * each turn (so the daemon keeps the unchanged prefix resident), and appends
 * the reply once it is complete. A reply that was cancelled or failed is not
 * kept, and neither is the message it answered, so the history stays a
 * conversation the model actually finished.
 *
 * @example
 * ```ts ignore
 * import { Chat } from "@contenox/modeldconn";
 *
 * await using chat = new Chat({ model: "smollm2", system: "You are terse.", dataRoot: "/home/me/.contenox" });
 * console.log((await chat.send("What is 2+2?")).text);
 * const second = await chat.send("And times 3?");
 * console.log(second.text, second.usage.reusedTokens); // reused > 0: the prefix stayed warm
 * ```
 *
 * @module
 */

import { ModeldClient } from "./client.ts";
import type { ChatMessage, ChatToolCall, ToolDefinition } from "./context.ts";
import type { DecodeDelta } from "./decode_stream.ts";
import {
  InvalidArgumentError,
  SessionClosedError,
  SessionFatalError,
  SlotGenerationStaleError,
  StaleFenceError,
} from "./errors.ts";
import { callOptions, type DaemonChoice } from "./generate.ts";
import { type ModelInput, resolveModel } from "./model.ts";
import type { ModelConfig, ModeldNode, ModelRef } from "./node.ts";
import type { Session } from "./session.ts";
import { type GenerateResult, GenerateStream, runTurn } from "./turn.ts";
import { decodeConfigFor, emptyUsage, type SamplingOptions } from "./usage.ts";

/**
 * Options of a {@linkcode Chat}.
 *
 * @example
 * ```ts
 * import type { ChatOptions } from "@contenox/modeldconn";
 * const options: ChatOptions = {
 *   model: "smollm2", system: "You are terse.", temperature: 0, dataRoot: "/home/me/.contenox",
 * };
 * ```
 */
export interface ChatOptions extends SamplingOptions, DaemonChoice {
  /** A store name or a reference; default: the only model in the daemon's store. */
  model?: ModelInput;
  /** A system prompt (the stable prefix the daemon keeps warm). */
  system?: string;
  /** Earlier messages to continue from (after the system prompt). */
  messages?: readonly ChatMessage[];
  /** Functions the model may call. */
  tools?: readonly ToolDefinition[];
  /** The model's load configuration (`numCtx`, …). */
  config?: ModelConfig;
}

/**
 * Options of one turn: sampling overrides, a signal and a deadline.
 *
 * @example
 * ```ts ignore
 * await chat.send("Hi", { maxTokens: 16, signal: AbortSignal.timeout(10_000) });
 * ```
 */
export interface TurnCallOptions extends SamplingOptions {
  /** Cancels the turn; an abort during the decode ends it quietly (not kept). */
  signal?: AbortSignal;
  /** A deadline for the turn, in milliseconds. */
  timeoutMs?: number;
}

/**
 * A conversation on one warm session. The session is opened at the first
 * turn and closed by `close()` / `await using`; one turn runs at a time.
 *
 * @example
 * ```ts ignore
 * import { Chat } from "@contenox/modeldconn";
 * await using chat = new Chat({ model: "smollm2", dataRoot: "/home/me/.contenox" });
 * for await (const d of chat.stream("Tell me a story")) console.log(d.text);
 * console.log(chat.messages.length); // 2: the question and the complete reply
 * ```
 */
export class Chat implements AsyncDisposable {
  /** Functions the model may call; change them between turns if you like. */
  tools: ToolDefinition[];
  readonly #options: ChatOptions;
  readonly #history: ChatMessage[];
  readonly #owned: ModeldClient | undefined;
  readonly #node: ModeldNode;
  #session: Session | undefined;
  #model: ModelRef | undefined;
  #busy = false;
  #closed = false;

  /**
   * Creates the chat; nothing is sent until the first turn.
   *
   * @param options Model, system prompt, history, tools, sampling and daemon.
   */
  constructor(options: ChatOptions = {}) {
    this.#options = options;
    this.tools = [...(options.tools ?? [])];
    this.#history = [
      ...(options.system ? [{ role: "system" as const, content: options.system }] : []),
      ...(options.messages ?? []),
    ];
    this.#owned = options.client ? undefined : new ModeldClient({ dataRoot: options.dataRoot });
    this.#node = options.client ?? this.#owned!;
  }

  /** The conversation so far (system prompt, then every complete turn). */
  get messages(): readonly ChatMessage[] {
    return this.#history;
  }

  /** The model in use, once the first turn resolved it. */
  get model(): ModelRef | undefined {
    return this.#model;
  }

  /**
   * Sends a turn and waits for the whole reply.
   *
   * @param content The user's text, or messages to append (for example `tool` results).
   * @param options Sampling overrides, signal and deadline.
   * @returns The reply and its usage.
   *
   * @example
   * ```ts ignore
   * const { text, toolCalls } = await chat.send("What's the weather in Oslo?");
   * ```
   */
  async send(
    content: string | ChatMessage | readonly ChatMessage[],
    options: TurnCallOptions = {},
  ): Promise<GenerateResult> {
    return await this.stream(content, options).result();
  }

  /**
   * Sends a turn and streams the reply; the reply joins the history when the
   * stream ends by itself. `break`, `cancel()` or the signal stop the decode
   * and leave the history as it was.
   *
   * @param content The user's text, or messages to append.
   * @param options Sampling overrides, signal and deadline.
   * @returns The single-use stream.
   *
   * @example
   * ```ts ignore
   * for await (const d of chat.stream("Hi")) console.log(d.text);
   * ```
   */
  stream(
    content: string | ChatMessage | readonly ChatMessage[],
    options: TurnCallOptions = {},
  ): GenerateStream {
    const added: ChatMessage[] = typeof content === "string"
      ? [{ role: "user", content }]
      : Array.isArray(content)
      ? [...content as readonly ChatMessage[]]
      : [content as ChatMessage];
    const usage = emptyUsage();
    const decode = decodeConfigFor({ ...this.#options, ...options });
    return new GenerateStream(usage, (cancel) => this.#turn(added, decode, options, cancel, usage));
  }

  async *#turn(
    added: ChatMessage[],
    decode: ReturnType<typeof decodeConfigFor>,
    options: TurnCallOptions,
    cancel: AbortSignal,
    usage: GenerateResult["usage"],
  ): AsyncGenerator<DecodeDelta> {
    if (this.#closed) {
      throw new InvalidArgumentError("Cannot send: the chat was closed; create a new Chat");
    }
    if (this.#busy) {
      throw new InvalidArgumentError(
        "Cannot send: a turn is still running; finish or cancel it first",
      );
    }
    this.#busy = true;
    using call = callOptions(options, cancel);
    try {
      const messages = [...this.#history, ...added];
      let text = "";
      const toolCalls: ChatToolCall[] = [];
      for await (const delta of this.#replayed(messages, decode, call, usage)) {
        text += delta.text;
        for (const c of delta.toolCalls) {
          toolCalls.push({
            ...(c.id ? { id: c.id } : {}),
            name: c.function?.name ?? "",
            arguments: c.function?.arguments ?? "",
          });
        }
        yield delta;
      }
      if (usage.stopReason === "end" || usage.stopReason === "max_tokens") {
        const reply: ChatMessage = { role: "assistant", content: text };
        if (toolCalls.length > 0) reply.toolCalls = toolCalls;
        this.#history.push(...added, reply);
      }
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Opens the session now instead of at the first turn, so that a missing
   * model or a busy slot shows before anything is typed. Idempotent.
   *
   * @param options Signal and deadline.
   *
   * @example
   * ```ts ignore
   * await using chat = new Chat({ model: "smollm2", dataRoot: "/home/me/.contenox" });
   * await chat.open(); // throws ModelNotFoundError here, not at the first send()
   * ```
   */
  async open(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (this.#closed) {
      throw new InvalidArgumentError("Cannot open: the chat was closed; create a new Chat");
    }
    using call = callOptions(options, new AbortController().signal);
    await this.#open(call);
  }

  /**
   * One turn on the warm session; when the daemon dropped the session before
   * anything was decoded (idle reaper, slot switch, restart), reopens it and
   * replays the turn once: the whole conversation is sent every turn anyway.
   */
  async *#replayed(
    messages: ChatMessage[],
    decode: ReturnType<typeof decodeConfigFor>,
    call: { signal?: AbortSignal },
    usage: GenerateResult["usage"],
  ): AsyncGenerator<DecodeDelta> {
    for (let attempt = 0;; attempt++) {
      const session = await this.#open(call);
      let yielded = false;
      try {
        for await (
          const delta of runTurn(session, messages, { tools: this.tools, decode, call, usage })
        ) {
          yielded = true;
          yield delta;
        }
        return;
      } catch (err) {
        if (yielded || attempt > 0 || !isDropped(err)) throw err;
        await session.close({ timeoutMs: 5_000 }).catch(() => {});
        this.#session = undefined;
        Object.assign(usage, emptyUsage());
      }
    }
  }

  async #open(call: { signal?: AbortSignal }): Promise<Session> {
    if (this.#session && !this.#session.closed) return this.#session;
    this.#model ??= await resolveModel(this.#node, this.#options.model, call);
    this.#session = await this.#node.openSession(this.#model, {
      ...call,
      config: this.#options.config,
    });
    return this.#session;
  }

  /**
   * Closes the session (and the client the chat created). Idempotent.
   *
   * @example
   * ```ts ignore
   * await chat.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#session?.close({ timeoutMs: 5_000 }).catch(() => {});
    await this.#owned?.[Symbol.asyncDispose]();
  }

  /** Closes the chat; for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Errors meaning the daemon no longer has the session (reopen and replay). */
function isDropped(err: unknown): boolean {
  return err instanceof SlotGenerationStaleError || err instanceof SessionClosedError ||
    err instanceof SessionFatalError || err instanceof StaleFenceError;
}
