/**
 * `modeldconn models ls | push FILE [--name N] [--type T] [--format F] | rm NAME | df`:
 * the daemon's model store (v0.34.0+). `push` hashes the file, then streams it
 * with a progress bar (bytes, rate, ETA) when stdout is a terminal and plain
 * progress lines otherwise; it needs `--allow-read` on the file.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * await main(["models", "push", "./qwen3-4b.gguf", "--name", "qwen3-4b"]);
 * await main(["models", "ls"]);
 * ```
 *
 * @module
 */

import { basename, extname } from "../path.ts";
import { AbortedError } from "../errors.ts";
import { sha256Hex, statPushFile } from "../push.ts";
import { UsageError } from "./args.ts";
import type { CommandContext } from "./command.ts";
import { ExitCode } from "./exit_codes.ts";
import { formatBytes, table } from "./output.ts";
import { Progress } from "./progress.ts";

const SUBCOMMANDS = ["ls", "push", "rm", "df"];

/**
 * Runs `models`.
 *
 * @param ctx The command context.
 * @returns 0.
 *
 * @example
 * ```ts ignore
 * await models(ctx);
 * ```
 */
export async function models(ctx: CommandContext): Promise<number> {
  const [sub, ...args] = ctx.positionals;
  if (sub === undefined || !SUBCOMMANDS.includes(sub)) {
    throw new UsageError(
      `${sub === undefined ? "models needs a subcommand" : `Unknown subcommand models ${sub}`} ` +
        `(${SUBCOMMANDS.join(", ")}; see \`modeldconn models --help\`)`,
    );
  }
  const expected = sub === "push" || sub === "rm" ? 1 : 0;
  if (args.length !== expected) {
    const what = sub === "push"
      ? "the model FILE"
      : sub === "rm"
      ? "the model NAME"
      : "no arguments";
    throw new UsageError(`models ${sub} takes ${what} (got ${args.length} arguments)`);
  }
  if (sub !== "push") {
    for (const flag of ["name", "type", "format"]) {
      if (ctx.flags.string(flag) !== undefined) {
        throw new UsageError(`--${flag} is for \`models push\`, not \`models ${sub}\``);
      }
    }
  }
  switch (sub) {
    case "ls":
      return await list(ctx);
    case "push":
      return await push(ctx, args[0]);
    case "rm":
      return await remove(ctx, args[0]);
    default:
      return await diskFree(ctx);
  }
}

async function list(ctx: CommandContext): Promise<number> {
  await using client = ctx.client();
  const stored = await client.listModels(ctx.call());
  if (ctx.out.isJson) {
    ctx.out.json(stored);
    return ExitCode.Ok;
  }
  if (stored.length === 0) {
    ctx.out.line(
      "no models in the store (push one with `modeldconn models push FILE --name NAME`)",
    );
    return ExitCode.Ok;
  }
  const rows = [["NAME", "TYPE", "SIZE", "CONTEXT", "DIGEST"]];
  for (const m of stored) {
    rows.push([
      m.name,
      m.type,
      formatBytes(m.sizeBytes),
      m.contextLength > 0 ? String(m.contextLength) : "-",
      m.digest ? m.digest.slice(0, 12) : "-",
    ]);
  }
  for (const line of table(rows)) ctx.out.line(line);
  return ExitCode.Ok;
}

async function remove(ctx: CommandContext, name: string): Promise<number> {
  await using client = ctx.client();
  await client.removeModel(name, ctx.call());
  if (ctx.out.isJson) ctx.out.json({ removed: name });
  else ctx.out.line(`removed ${name}`);
  return ExitCode.Ok;
}

async function diskFree(ctx: CommandContext): Promise<number> {
  await using client = ctx.client();
  const d = await client.diskStats(ctx.call());
  if (ctx.out.isJson) {
    ctx.out.json(d);
    return ExitCode.Ok;
  }
  ctx.out.line(
    `${formatBytes(d.freeBytes)} free of ${formatBytes(d.totalBytes)} ` +
      `(${formatBytes(d.usedBytes)} used) on the disk holding the model store`,
  );
  return ExitCode.Ok;
}

async function push(ctx: CommandContext, path: string): Promise<number> {
  const ext = extname(path);
  const name = ctx.flags.string("name") ?? basename(path, ext);
  const type = ctx.flags.string("type") ?? "llama";
  const format = ctx.flags.string("format") ?? (ext === ".tar" ? "tar" : "file");
  if (name === "") throw new UsageError("Invalid --name: pass the model's store name");
  if (format !== "file" && format !== "tar") {
    throw new UsageError(`Invalid --format ${JSON.stringify(format)}: pass "file" or "tar"`);
  }
  const { size, open } = await statPushFile(path);
  const human = !ctx.out.isJson;
  const signal = ctx.interrupts.signal;

  const hashing = human
    ? new Progress(ctx.out.stdout, { label: `hash ${name}`, total: size })
    : undefined;
  const digest = await sha256Hex(counted(open(), signal, (n) => hashing?.update(n)));
  hashing?.finish();

  await using client = ctx.client();
  const pushing = human
    ? new Progress(ctx.out.stdout, { label: `push ${name}`, total: size })
    : undefined;
  const res = await client.pushModel(open(), {
    ...ctx.call(),
    name,
    type,
    format,
    digest,
    totalBytes: size,
    onProgress: (p) => pushing?.update(p.sentBytes),
  });
  pushing?.finish();
  if (ctx.out.isJson) {
    ctx.out.json({ name, type, format, digest, sizeBytes: size, ...res });
  } else if (res.alreadyPresent) {
    ctx.out.line(`${name} is already in the store (same digest sha256:${digest.slice(0, 12)})`);
  } else {
    ctx.out.line(
      `pushed ${name} (${formatBytes(res.bytesWritten)}, sha256:${digest.slice(0, 12)})`,
    );
  }
  return ExitCode.Ok;
}

/** Passes bytes through, reporting the running total; stops when `signal` aborts. */
async function* counted(
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
  onBytes: (total: number) => void,
): AsyncGenerator<Uint8Array> {
  let total = 0;
  for await (const chunk of source) {
    if (signal.aborted) throw new AbortedError("Hashing the model file", { cause: signal.reason });
    total += chunk.length;
    onBytes(total);
    yield chunk;
  }
}
