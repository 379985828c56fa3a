/**
 * What every CLI command gets ({@linkcode CommandContext}): the parsed flags,
 * the output, Ctrl-C handling ({@linkcode Interrupts}), the per-call options,
 * and the shared steps: opening the client and choosing the model.
 *
 * @example
 * ```ts ignore
 * import type { CommandContext } from "./command.ts";
 *
 * export async function hello(ctx: CommandContext): Promise<number> {
 *   await using client = ctx.client();
 *   ctx.out.line((await client.health(ctx.call())).instanceId);
 *   return 0;
 * }
 * ```
 *
 * @module
 */

import { basename, extname } from "../path.ts";
import { ModeldClient } from "../client.ts";
import type { CallOptions } from "../call.ts";
import { DaemonTooOldError, NoDefaultModelError } from "../errors.ts";
import { defaultModel } from "../model.ts";
import type { ModelConfig, ModelRef } from "../node.ts";
import { type Flags, type GlobalOptions, UsageError } from "./args.ts";
import type { CliIo } from "./io.ts";
import type { Output } from "./output.ts";

/**
 * Ctrl-C for the CLI. By default a SIGINT aborts {@linkcode Interrupts.signal}
 * (the command stops, closes its session, and exits 130); while a command has
 * {@linkcode Interrupts.intercept}ed it, SIGINT calls the command's handler
 * instead (chat uses that to stop one reply and return to the prompt).
 *
 * @example
 * ```ts
 * import { Interrupts } from "./command.ts";
 * let fire = () => {};
 * using interrupts = new Interrupts({ onInterrupt: (l) => ((fire = l), () => {}) });
 * fire();
 * console.assert(interrupts.interrupted && interrupts.signal.aborted);
 * ```
 */
export class Interrupts implements Disposable {
  readonly #controller = new AbortController();
  readonly #unsubscribe: () => void;
  #handler: (() => void) | undefined;

  /** @param io Where SIGINT comes from. */
  constructor(io: Pick<CliIo, "onInterrupt">) {
    this.#unsubscribe = io.onInterrupt(() => {
      if (this.#handler) this.#handler();
      else this.#controller.abort(new DOMException("Interrupted", "AbortError"));
    });
  }

  /** Aborted by a Ctrl-C that was not intercepted. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether a Ctrl-C ended the command. */
  get interrupted(): boolean {
    return this.#controller.signal.aborted;
  }

  /**
   * Routes Ctrl-C to `handler` until the returned value is disposed.
   *
   * @param handler Called on each SIGINT instead of aborting the command.
   * @returns Restores the default.
   *
   * @example
   * ```ts
   * import { Interrupts } from "./command.ts";
   * using interrupts = new Interrupts({ onInterrupt: () => () => {} });
   * const turn = new AbortController();
   * using _ = interrupts.intercept(() => turn.abort());
   * ```
   */
  intercept(handler: () => void): Disposable {
    const previous = this.#handler;
    this.#handler = handler;
    return { [Symbol.dispose]: () => (this.#handler = previous) };
  }

  /** Stops listening for SIGINT. */
  [Symbol.dispose](): void {
    this.#unsubscribe();
  }
}

/**
 * Everything a command needs.
 *
 * @example
 * ```ts ignore
 * async function run(ctx: CommandContext) {
 *   if (ctx.positionals.length > 0) throw new UsageError("status takes no arguments");
 * }
 * ```
 */
export interface CommandContext {
  /** The process's I/O. */
  io: CliIo;
  /** Human or JSON output. */
  out: Output;
  /** The global flags. */
  global: GlobalOptions;
  /** The command's flags. */
  flags: Flags;
  /** The positional arguments after the command. */
  positionals: string[];
  /** Ctrl-C. */
  interrupts: Interrupts;
  /**
   * Options for one call: the interrupt signal (plus `extra`) and `--timeout`.
   *
   * @param extra Another signal that should also cancel the call.
   */
  call(extra?: AbortSignal): CallOptions;
  /** A client for `--data-root` (or the default data root); close it with `await using`. */
  client(): ModeldClient;
}

/**
 * Builds a {@linkcode CommandContext}.
 *
 * @param init The I/O, output, parsed command line and interrupts.
 * @returns The context.
 *
 * @example
 * ```ts ignore
 * const ctx = commandContext({ io, out, global, flags, positionals, interrupts });
 * ```
 */
export function commandContext(
  init: Omit<CommandContext, "call" | "client">,
): CommandContext {
  return {
    ...init,
    call(extra) {
      const signal = extra
        ? AbortSignal.any([init.interrupts.signal, extra])
        : init.interrupts.signal;
      const options: CallOptions = { signal };
      if (init.global.timeoutMs !== undefined) options.timeoutMs = init.global.timeoutMs;
      return options;
    },
    client() {
      return new ModeldClient(init.global.dataRoot ? { dataRoot: init.global.dataRoot } : {});
    },
  };
}

/**
 * The model a command uses, from `--model`, `--path`, `--type` and `--ctx`.
 *
 * @example
 * ```ts
 * import type { ChosenModel } from "./command.ts";
 * const chosen: ChosenModel = { ref: { name: "qwen3-4b" }, config: { numCtx: 8192 } };
 * ```
 */
export interface ChosenModel {
  /** The model reference. */
  ref: ModelRef;
  /** The load config (`--ctx` → `numCtx`), when given. */
  config?: ModelConfig;
}

/**
 * Chooses the model: `--model NAME` (resolved in the daemon's store, or loaded
 * from `--path` on the daemon's host), `--path` alone (named after the file),
 * or, when `storeDefault` is set and neither is given, the only model in the
 * daemon's store.
 *
 * @param ctx The command context.
 * @param client The client, to list the store.
 * @param storeDefault Whether the only stored model may stand in for `--model`.
 * @returns The model reference and load config.
 * @throws {UsageError} When no model is named and none (or several) are stored.
 *
 * @example
 * ```ts ignore
 * const { ref, config } = await chooseModel(ctx, client, true);
 * await using session = await client.openSession(ref, { ...ctx.call(), config });
 * ```
 */
export async function chooseModel(
  ctx: CommandContext,
  client: ModeldClient,
  storeDefault: boolean,
): Promise<ChosenModel> {
  const name = ctx.flags.string("model");
  const path = ctx.flags.string("path");
  const type = ctx.flags.string("type");
  const numCtx = ctx.flags.int("ctx", { min: 1, max: Number.MAX_SAFE_INTEGER }); // a Go int
  if (name === "") throw new UsageError("Invalid --model: pass a model name");
  if (path === "") throw new UsageError("Invalid --path: pass the model file's path");
  const chosen: ChosenModel = { ref: { name: name ?? "" } };
  if (numCtx !== undefined) chosen.config = { numCtx };
  if (type !== undefined) chosen.ref.type = type;
  if (path !== undefined) {
    chosen.ref.path = path;
    if (name === undefined) chosen.ref.name = basename(path, extname(path));
  }
  if (chosen.ref.name !== "") return chosen;

  const need = "pass --model NAME (a model in the daemon's store) or --path FILE";
  if (!storeDefault) throw new UsageError(`Cannot choose a model: ${need}`);
  // The library's rule (the only model in the store), with the CLI's advice.
  try {
    const stored = await defaultModel(client, ctx.call());
    chosen.ref.name = stored.name;
    if (stored.type) chosen.ref.type ??= stored.type;
    return chosen;
  } catch (err) {
    if (!(err instanceof NoDefaultModelError)) throw err;
    if (err.cause instanceof DaemonTooOldError) {
      throw new UsageError(
        `Cannot choose a model: this modeld has no model store (before v0.34.0); ${need}`,
        { cause: err },
      );
    }
    if (err.stored.length === 0) {
      throw new UsageError(
        `Cannot choose a model: the daemon's store is empty; ${need}, ` +
          "or push one with `modeldconn models push FILE --name NAME`",
        { cause: err },
      );
    }
    throw new UsageError(
      `Cannot choose a model: the store has ${err.stored.length} (${
        err.stored.join(", ")
      }); pass --model NAME`,
      { cause: err },
    );
  }
}

/**
 * The decode settings from `--max-tokens`, `--temperature`, `--top-p`,
 * `--top-k` and `--seed`.
 *
 * @param flags The command's flags.
 * @returns The DecodeConfig fields that were given.
 * @throws {UsageError} On a malformed value.
 *
 * @example
 * ```ts
 * import { Flags } from "./args.ts";
 * import { decodeConfig } from "./command.ts";
 * const cfg = decodeConfig(new Flags({ "max-tokens": "64", temperature: "0" }));
 * console.assert(cfg.maxTokens === 64 && cfg.temperature === 0);
 * ```
 */
export function decodeConfig(flags: Flags): {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: bigint;
} {
  const cfg: ReturnType<typeof decodeConfig> = {};
  const maxTokens = flags.int("max-tokens", { min: 1, max: 2 ** 31 - 1 });
  const temperature = flags.float("temperature", { min: 0 });
  const topP = flags.float("top-p", { min: 0, max: 1 });
  const topK = flags.int("top-k", { min: 0, max: 2 ** 31 - 1 });
  const seed = flags.bigint("seed");
  if (maxTokens !== undefined) cfg.maxTokens = maxTokens;
  if (temperature !== undefined) cfg.temperature = temperature;
  if (topP !== undefined) cfg.topP = topP;
  if (topK !== undefined) cfg.topK = topK;
  if (seed !== undefined) cfg.seed = seed;
  return cfg;
}
