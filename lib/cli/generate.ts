/**
 * `modeldconn generate [PROMPT...]`: one completion, streamed to stdout as it
 * arrives. The prompt comes from the arguments, or from stdin when there are
 * none and stdin is not a terminal. Ctrl-C cancels the decode on the daemon,
 * closes the session and exits 130.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * await main(["generate", "--model", "qwen3-4b", "--max-tokens", "64", "Why is the sky blue?"]);
 * ```
 *
 * @module
 */

import type { DecodeDelta } from "../decode_stream.ts";
import { generateStream } from "../generate.ts";
import { UsageError } from "./args.ts";
import { chooseModel, type CommandContext, decodeConfig } from "./command.ts";
import { ExitCode } from "./exit_codes.ts";
import { readAll } from "./io.ts";
import type { Output } from "./output.ts";

/**
 * Runs `generate`.
 *
 * @param ctx The command context.
 * @returns 0, or 130 when interrupted.
 *
 * @example
 * ```ts ignore
 * const code = await generate(ctx);
 * ```
 */
export async function generate(ctx: CommandContext): Promise<number> {
  const config = decodeConfig(ctx.flags);
  const system = ctx.flags.string("system");
  const showThinking = ctx.flags.bool("thinking");
  let prompt = ctx.positionals.join(" ");
  if (ctx.positionals.length === 0) {
    if (ctx.io.stdin.isTerminal) {
      throw new UsageError("Cannot generate: no prompt (pass PROMPT, or pipe it on stdin)");
    }
    prompt = (await readAll(ctx.io.stdin.readable, ctx.interrupts.signal)).replace(/\r?\n$/, "");
    if (ctx.interrupts.interrupted) return ExitCode.Interrupted;
    if (prompt.trim() === "") {
      throw new UsageError(
        "Cannot generate: the prompt on stdin is empty (pass PROMPT, or pipe it)",
      );
    }
  }
  await using client = ctx.client();
  const model = await chooseModel(ctx, client, true);
  const stream = generateStream({
    client,
    model: model.ref,
    config: model.config,
    system,
    prompt,
    ...config,
    ...ctx.call(),
  });
  const printer = new DeltaPrinter(ctx.out, {
    thinking: showThinking,
    mode: ctx.out.isJson ? "ndjson" : "human",
  });
  for await (const delta of stream) printer.print(delta);
  printer.end();
  const interrupted = ctx.interrupts.interrupted;
  const { usage } = stream;
  if (ctx.out.isJson) {
    ctx.out.json({
      done: true,
      interrupted,
      chunks: usage.chunks,
      stopReason: usage.stopReason,
      reusedTokens: usage.reusedTokens,
      prefilledTokens: usage.prefilledTokens,
      residentTokens: usage.promptTokens,
    });
  } else if (interrupted) {
    ctx.out.note("interrupted: generation cancelled");
  }
  return interrupted ? ExitCode.Interrupted : ExitCode.Ok;
}

/**
 * Prints decoded deltas: text to stdout as it arrives, reasoning (with
 * `--thinking`) and tool calls to stderr; in `ndjson` mode one JSON object
 * per chunk; in `silent` mode nothing (the caller reports the collected text).
 *
 * @example
 * ```ts ignore
 * const printer = new DeltaPrinter(ctx.out, { thinking: true, mode: "human" });
 * for await (const d of session.decode()) printer.print(d);
 * printer.end();
 * ```
 */
export class DeltaPrinter {
  /** Chunks printed. */
  chunks = 0;
  /** The text so far. */
  text = "";
  /** The reasoning so far. */
  thinking = "";
  /** Every tool call so far. */
  readonly toolCalls: DecodeDelta["toolCalls"] = [];
  readonly #out: Output;
  readonly #showThinking: boolean;
  readonly #mode: "human" | "ndjson" | "silent";
  #inThinking = false;

  /**
   * @param out The output.
   * @param options Whether to print reasoning deltas, and how to print.
   */
  constructor(out: Output, options: { thinking: boolean; mode: "human" | "ndjson" | "silent" }) {
    this.#out = out;
    this.#showThinking = options.thinking;
    this.#mode = options.mode;
  }

  /** @param delta One decoded chunk. */
  print(delta: DecodeDelta): void {
    this.chunks++;
    this.text += delta.text;
    this.thinking += delta.thinking;
    this.toolCalls.push(...delta.toolCalls);
    const out = this.#out;
    if (this.#mode === "silent") return;
    if (this.#mode === "ndjson") {
      out.json({ text: delta.text, thinking: delta.thinking, toolCalls: delta.toolCalls });
      return;
    }
    if (this.#showThinking && delta.thinking !== "") {
      this.#inThinking = true;
      out.stderr.write(out.dim(delta.thinking));
    }
    if (delta.text !== "") {
      this.#endThinking();
      out.write(delta.text);
    }
    for (const call of delta.toolCalls) {
      this.#endThinking();
      out.note(`tool call: ${call.function?.name ?? "?"} ${call.function?.arguments ?? ""}`);
    }
  }

  /** Ends the output with a newline (human mode). */
  end(): void {
    if (this.#mode !== "human") return;
    this.#endThinking();
    if (this.text !== "" && !this.text.endsWith("\n")) this.#out.write("\n");
  }

  #endThinking(): void {
    if (!this.#inThinking) return;
    this.#inThinking = false;
    if (!this.thinking.endsWith("\n")) this.#out.stderr.write("\n");
  }
}
