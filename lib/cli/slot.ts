/**
 * `modeldconn load` and `modeldconn unload`: the daemon's model slot by hand.
 * `load` makes a model resident explicitly (it stays until `unload`, and
 * `embed` or `models rm` of it answer `model_busy` meanwhile); `unload` frees
 * the slot.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * await main(["load", "--model", "qwen3-4b", "--ctx", "8192"]);
 * await main(["unload"]);
 * ```
 *
 * @module
 */

import { UsageError } from "./args.ts";
import { chooseModel, type CommandContext } from "./command.ts";
import { ExitCode } from "./exit_codes.ts";

/**
 * Runs `load`.
 *
 * @param ctx The command context.
 * @returns 0.
 *
 * @example
 * ```ts ignore
 * await load(ctx);
 * ```
 */
export async function load(ctx: CommandContext): Promise<number> {
  noArguments(ctx, "load");
  await using client = ctx.client();
  const { ref, config } = await chooseModel(ctx, client, true);
  const active = await client.loadModel(ref, { ...ctx.call(), config });
  if (ctx.out.isJson) {
    ctx.out.json(active);
    return ExitCode.Ok;
  }
  ctx.out.line(`loaded ${active.modelName || ref.name} (generation ${active.generation})`);
  ctx.out.note(
    "it stays loaded until `modeldconn unload` (embed and models rm of it answer model_busy)",
  );
  return ExitCode.Ok;
}

/**
 * Runs `unload`.
 *
 * @param ctx The command context.
 * @returns 0.
 *
 * @example
 * ```ts ignore
 * await unload(ctx);
 * ```
 */
export async function unload(ctx: CommandContext): Promise<number> {
  noArguments(ctx, "unload");
  const generation = ctx.flags.bigint("generation");
  if (generation !== undefined && generation < 0n) {
    throw new UsageError(
      `Invalid --generation "${generation}": pass the slot generation \`modeldconn status\` shows (0 or more)`,
    );
  }
  await using client = ctx.client();
  await client.unloadModel({ ...ctx.call(), expectedGeneration: generation });
  if (ctx.out.isJson) ctx.out.json({ unloaded: true });
  else ctx.out.line("unloaded: the model slot is empty");
  return ExitCode.Ok;
}

function noArguments(ctx: CommandContext, command: string): void {
  if (ctx.positionals.length > 0) {
    throw new UsageError(
      `${command} takes no arguments (got ${JSON.stringify(ctx.positionals[0])}); ` +
        "name the model with --model",
    );
  }
}
