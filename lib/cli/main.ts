/**
 * The CLI's entry point: parses the command line, runs the command, reports
 * any error (saying what to do next) and returns the exit code. `cli.ts` at
 * the package root calls it with `Deno.args`.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(["status"]));
 * ```
 *
 * @module
 */

import { parseCli, type ParsedCli, UsageError } from "./args.ts";
import { type CommandContext, commandContext, Interrupts } from "./command.ts";
import { ExitCode, exitCodeFor } from "./exit_codes.ts";
import { helpText } from "./help.ts";
import { type CliIo, denoIo } from "./io.ts";
import { Output } from "./output.ts";

// Each command's module is loaded when it runs: `status` loads no push code
// (node:crypto) and no chat code, `serve` alone the llama.cpp engine.
const RUNNERS: Record<string, (ctx: CommandContext) => Promise<number>> = {
  status: async (ctx) => (await import("./status.ts")).status(ctx),
  describe: async (ctx) => (await import("./describe.ts")).describe(ctx),
  generate: async (ctx) => (await import("./generate.ts")).generate(ctx),
  chat: async (ctx) => (await import("./chat.ts")).chat(ctx),
  embed: async (ctx) => (await import("./embed.ts")).embed(ctx),
  load: async (ctx) => (await import("./slot.ts")).load(ctx),
  unload: async (ctx) => (await import("./slot.ts")).unload(ctx),
  models: async (ctx) => (await import("./models.ts")).models(ctx),
  serve: async (ctx) => (await import("./serve.ts")).serve(ctx),
};

/**
 * Runs the CLI.
 *
 * @param args The arguments, without the program name (`Deno.args`).
 * @param io The process's I/O (default: the real stdin, stdout, stderr and SIGINT).
 * @returns The exit code (see `--help`).
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * const code = await main(["generate", "--model", "qwen3-4b", "Hello"]);
 * ```
 */
export async function main(args: string[], io: CliIo = denoIo()): Promise<number> {
  let parsed: ParsedCli;
  try {
    parsed = parseCli(args);
  } catch (err) {
    const out = new Output(io, args.includes("--json"));
    out.error(err);
    await out.flush().catch(() => {});
    return exitCodeFor(err);
  }
  const out = new Output(io, parsed.global.json);
  try {
    const { command, global, flags, positionals } = parsed;
    if (command === "help") {
      out.line(helpText(positionals[0]));
      return ExitCode.Ok;
    }
    if (global.help) {
      out.line(helpText(command));
      return ExitCode.Ok;
    }
    if (command === undefined) {
      out.stderr.write(`${helpText()}\n`);
      throw new UsageError("No command given (see above)");
    }
    using interrupts = new Interrupts(io);
    const ctx = commandContext({ io, out, global, flags, positionals, interrupts });
    try {
      return await RUNNERS[command](ctx);
    } catch (err) {
      if (interrupts.interrupted) {
        if (!out.isJson) out.note("interrupted");
        return ExitCode.Interrupted;
      }
      throw err;
    }
  } catch (err) {
    out.error(err);
    return exitCodeFor(err);
  } finally {
    await out.flush().catch(() => {});
  }
}
