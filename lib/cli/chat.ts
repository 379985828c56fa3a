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

import { buildContext, type ChatMessage } from "../context.ts";
import { AbortedError } from "../errors.ts";
import type { Session } from "../session.ts";
import { UsageError } from "./args.ts";
import { chooseModel, type CommandContext, decodeConfig } from "./command.ts";
import { ExitCode } from "./exit_codes.ts";
import { closeQuietly, DeltaPrinter } from "./generate.ts";
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
  const session = await client.openSession(model.ref, { ...ctx.call(), config: model.config });
  const history: ChatMessage[] = system ? [{ role: "system", content: system }] : [];
  try {
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
        await runTurn(ctx, session, history, line, turn, {
          config,
          showThinking,
          showStats,
        });
      }
      if (interactive) out.write("> ");
    }
    if (ctx.interrupts.interrupted) {
      if (interactive) out.line();
      return ExitCode.Interrupted;
    }
    if (interactive) out.line();
    return ExitCode.Ok;
  } finally {
    await closeQuietly(session);
  }
}

async function runTurn(
  ctx: CommandContext,
  session: Session,
  history: ChatMessage[],
  userText: string,
  turn: number,
  options: {
    config: ReturnType<typeof decodeConfig>;
    showThinking: boolean;
    showStats: boolean;
  },
): Promise<void> {
  const out = ctx.out;
  const stop = new AbortController();
  using _ = ctx.interrupts.intercept(() => stop.abort());
  const call = ctx.call(stop.signal);
  history.push({ role: "user", content: userText });
  const printer = new DeltaPrinter(out, {
    thinking: options.showThinking,
    mode: out.isJson ? "silent" : "human",
  });
  let stats: TurnStats | undefined;
  try {
    const built = await buildContext(history);
    const prefix = await session.ensurePrefix(built.prefix, call);
    const suffix = await session.prefillSuffix(built.suffix, call);
    stats = {
      reusedTokens: prefix.reusedTokens,
      prefilledTokens: prefix.prefilledTokens + suffix.suffixTokens,
      prefixPrefilledTokens: prefix.prefilledTokens,
      suffixTokens: suffix.suffixTokens,
      residentTokens: suffix.residentTokens,
    };
    for await (const delta of session.decode(options.config, call)) printer.print(delta);
  } catch (err) {
    // Ctrl-C before the decode started: drop the turn, back to the prompt.
    if (!(stop.signal.aborted && err instanceof AbortedError)) throw err;
  }
  printer.end();
  const stopped = stop.signal.aborted;
  if (printer.text !== "") history.push({ role: "assistant", content: printer.text });
  else history.pop(); // no reply: forget the question too, keep turns alternating
  if (out.isJson) {
    out.json({
      turn,
      user: userText,
      reply: printer.text,
      thinking: printer.thinking,
      toolCalls: printer.toolCalls,
      interrupted: stopped,
      ...(stats ?? {}),
    });
    return;
  }
  if (stopped) out.note(out.dim("(reply stopped)"));
  if (options.showStats && stats) {
    out.note(out.dim(
      `[turn ${turn}: reused ${stats.reusedTokens} tokens, prefilled ${stats.prefilledTokens} ` +
        `(prefix ${stats.prefixPrefilledTokens} + conversation ${stats.suffixTokens}), ` +
        `resident ${stats.residentTokens}]`,
    ));
  }
}
