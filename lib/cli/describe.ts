/**
 * `modeldconn describe --model NAME [--path P] [--type T] [--ctx N]`: a
 * model's context sizes and, on v0.32.4+ daemons, its memory plan, device and
 * chat-template capabilities, without opening a session.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * await main(["describe", "--model", "qwen3-4b", "--ctx", "8192"]);
 * ```
 *
 * @module
 */

import { UsageError } from "./args.ts";
import { chooseModel, type CommandContext } from "./command.ts";
import { ExitCode } from "./exit_codes.ts";
import { formatBytes, toPlain } from "./output.ts";

/**
 * Runs `describe`.
 *
 * @param ctx The command context.
 * @returns 0.
 *
 * @example
 * ```ts ignore
 * await describe(ctx);
 * ```
 */
export async function describe(ctx: CommandContext): Promise<number> {
  if (ctx.positionals.length > 0) {
    throw new UsageError(
      `describe takes no arguments (got ${
        JSON.stringify(ctx.positionals[0])
      }); name the model with --model`,
    );
  }
  await using client = ctx.client();
  const { ref, config } = await chooseModel(ctx, client, false);
  const info = await client.describe(ref, { ...ctx.call(), config });
  if (ctx.out.isJson) {
    ctx.out.json({ model: ref, config: config ?? {}, info });
    return ExitCode.Ok;
  }
  ctx.out.line(`${ref.name}${ref.type ? ` (${ref.type})` : ""}${ref.path ? ` ${ref.path}` : ""}`);
  const plain = toPlain(info) as Record<string, unknown>;
  const rows: [string, string][] = [];
  for (const [key, value] of Object.entries(plain)) {
    if (value === 0 || value === "" || value === false || value === null) continue;
    if (Array.isArray(value)) {
      if (value.length === 0) continue;
      value.forEach((v, i) => rows.push([`${words(key)} ${i}`, compact(v)]));
      continue;
    }
    const text = /Bytes$/.test(key) && (typeof value === "number" || typeof value === "string")
      ? `${formatBytes(BigInt(value))} (${value})`
      : typeof value === "object"
      ? compact(value)
      : String(value);
    rows.push([words(key), text]);
  }
  if (rows.length === 0) ctx.out.line("  (the daemon reported nothing about this model)");
  const width = Math.max(0, ...rows.map(([k]) => k.length)) + 1;
  for (const [k, v] of rows) ctx.out.line(`  ${`${k}:`.padEnd(width)} ${v}`);
  return ExitCode.Ok;
}

/** `kvBytesPerToken` → `kv bytes per token`. */
function words(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
}

function compact(value: unknown): string {
  if (value === null || typeof value !== "object") return String(value);
  return Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== 0 && v !== "" && v !== false && v !== null)
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" ");
}
