/**
 * `modeldconn chat`: a multi-turn conversation on one warm session. Each line
 * on stdin is a user turn (piped input works too); `/exit` or end of input
 * ends the chat. Every turn rebuilds the whole conversation with
 * `buildContext` and sends it with `ensurePrefix` + `prefillSuffix` +
 * `decode`, so the daemon keeps the stable prefix (the system prompt)
 * resident; `--stats` prints the reused and prefilled tokens of each turn.
 * Ctrl-C stops the reply in progress; at the prompt it ends the chat (130).
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * await main(["chat", "--model", "qwen3-4b", "--system", "You are terse.", "--stats"]);
 * ```
 *
 * @module
 */

import { Chat } from "../chat.ts";
import { AbortedError } from "../errors.ts";
import { UsageError } from "./args.ts";
import { chooseModel, type CommandContext, decodeConfig } from "./command.ts";
import { ExitCode } from "./exit_codes.ts";
import { DeltaPrinter } from "./generate.ts";
import { readLines } from "./io.ts";

/**
 * The token counts of one chat turn (`--stats`, and every `--json` turn object).
 *
 * @example
 * ```ts
 * import type { TurnStats } from "./chat.ts";
 * const warm: TurnStats = {
 *   reusedTokens: 52, prefilledTokens: 89, prefixPrefilledTokens: 0, suffixTokens: 89,
 *   residentTokens: 141,
 * };
 * ```
 */
export interface TurnStats {
  /** Prefix tokens the daemon kept from the previous turn. */
  reusedTokens: number;
  /** Tokens prefilled this turn: prefix (cold part) plus suffix. */
  prefilledTokens: number;
  /** Of those, the prefix's. */
  prefixPrefilledTokens: number;
  /** Of those, the suffix's (the conversation after the system prompt). */
  suffixTokens: number;
  /** Tokens resident after the prefill. */
  residentTokens: number;
}

/**
 * Runs `chat`.
 *
 * @param ctx The command context.
 * @returns 0 at `/exit` or end of input, 130 on Ctrl-C at the prompt.
 *
 * @example
 * ```ts ignore
 * const code = await chat(ctx);
 * ```
 */
export async function chat(ctx: CommandContext): Promise<number> {
  if (ctx.positionals.length > 0) {
    throw new UsageError(
      `chat takes no arguments (got ${
        JSON.stringify(ctx.positionals[0])
      }); type the turns on stdin`,
    );
  }
  const config = decodeConfig(ctx.flags);
  const system = ctx.flags.string("system");
  const showThinking = ctx.flags.bool("thinking");
  const showStats = ctx.flags.bool("stats");
  const out = ctx.out;
  const interactive = ctx.io.stdin.isTerminal && !out.isJson;

  await using client = ctx.client();
  const model = await chooseModel(ctx, client, true);
  await using conversation = new Chat({
    client,
    model: model.ref,
    config: model.config,
    system,
    ...config,
  });
  await conversation.open(ctx.call());
  if (interactive) {
    out.note(out.dim(
      `chat with ${model.ref.name}: one line per turn; /exit or Ctrl-D ends, Ctrl-C stops a reply`,
    ));
    out.write("> ");
  }
  let turn = 0;
  for await (const line of readLines(ctx.io.stdin.readable, ctx.interrupts.signal)) {
    const text = line.trim();
    if (text === "/exit" || text === "/quit") break;
    if (text !== "") {
      turn++;
      await runTurn(ctx, conversation, line, turn, { showThinking, showStats });
    }
    if (interactive) out.write("> ");
  }
  if (ctx.interrupts.interrupted) {
    if (interactive) out.line();
    return ExitCode.Interrupted;
  }
  if (interactive) out.line();
  return ExitCode.Ok;
}

async function runTurn(
  ctx: CommandContext,
  conversation: Chat,
  userText: string,
  turn: number,
  options: { showThinking: boolean; showStats: boolean },
): Promise<void> {
  const out = ctx.out;
  const stop = new AbortController();
  using _ = ctx.interrupts.intercept(() => stop.abort());
  const printer = new DeltaPrinter(out, {
    thinking: options.showThinking,
    mode: out.isJson ? "silent" : "human",
  });
  // One turn on the chat's warm session; the chat keeps the reply only if it is complete.
  const stream = conversation.stream(userText, ctx.call(stop.signal));
  try {
    for await (const delta of stream) printer.print(delta);
  } catch (err) {
    // Ctrl-C before the decode started: drop the turn, back to the prompt.
    if (!(stop.signal.aborted && err instanceof AbortedError)) throw err;
  }
  printer.end();
  const stopped = stop.signal.aborted;
  const usage = stream.usage;
  const stats: TurnStats | undefined = usage.promptTokens > 0
    ? {
      reusedTokens: usage.reusedTokens,
      prefilledTokens: usage.prefilledTokens,
      prefixPrefilledTokens: usage.prefixPrefilledTokens,
      suffixTokens: usage.suffixTokens,
      residentTokens: usage.promptTokens,
    }
    : undefined;
  if (out.isJson) {
    out.json({
      turn,
      user: userText,
      reply: printer.text,
      thinking: printer.thinking,
      toolCalls: printer.toolCalls,
      interrupted: stopped,
      stopReason: usage.stopReason,
      ...(stats ?? {}),
    });
    return;
  }
  if (stopped) out.note(out.dim("(reply stopped; not kept in the conversation)"));
  if (options.showStats && stats) {
    out.note(out.dim(
      `[turn ${turn}: reused ${stats.reusedTokens} tokens, prefilled ${stats.prefilledTokens} ` +
        `(prefix ${stats.prefixPrefilledTokens} + conversation ${stats.suffixTokens}), ` +
        `resident ${stats.residentTokens}]`,
    ));
  }
}
