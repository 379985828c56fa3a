/**
 * `modeldconn embed --model NAME TEXT`: prints the embedding vector as a JSON
 * array (with `--json`, an object with the model and dimensions). The text
 * comes from the arguments, or from stdin when there are none and stdin is
 * not a terminal. Needs a v0.32.4+ daemon.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * await main(["embed", "--model", "bge-small", "hello world"]);
 * ```
 *
 * @module
 */

import { UsageError } from "./args.ts";
import { chooseModel, type CommandContext } from "./command.ts";
import { ExitCode } from "./exit_codes.ts";
import { readAll } from "./io.ts";

/**
 * Runs `embed`.
 *
 * @param ctx The command context.
 * @returns 0, or 130 when interrupted while reading stdin.
 *
 * @example
 * ```ts ignore
 * await embed(ctx);
 * ```
 */
export async function embed(ctx: CommandContext): Promise<number> {
  let text = ctx.positionals.join(" ");
  if (ctx.positionals.length === 0) {
    if (ctx.io.stdin.isTerminal) {
      throw new UsageError("Cannot embed: no text (pass TEXT, or pipe it on stdin)");
    }
    text = (await readAll(ctx.io.stdin.readable, ctx.interrupts.signal)).replace(/\r?\n$/, "");
    if (ctx.interrupts.interrupted) return ExitCode.Interrupted;
  }
  await using client = ctx.client();
  const { ref, config } = await chooseModel(ctx, client, false);
  const vector = await client.embed(ref, text, { ...ctx.call(), config });
  if (ctx.out.isJson) ctx.out.json({ model: ref.name, dimensions: vector.length, vector });
  else ctx.out.line(JSON.stringify(vector));
  return ExitCode.Ok;
}
