/**
 * `modeldconn serve`: run the llama.cpp daemon in the foreground on a data
 * root until Ctrl-C or SIGTERM, then stop cleanly (calls in flight finish,
 * sessions close, the lease file is removed). Loaded only for this command, so
 * the client commands never load the engine.
 *
 * @example
 * ```ts ignore
 * import { serve } from "@contenox/modeldconn/daemon";
 * const code = await serve(ctx);
 * ```
 *
 * @module
 */

import { dataRoot } from "../data_root.ts";
import { serve as serveDaemon } from "../daemon/serve.ts";
import { onStopSignal } from "../daemon/signals.ts";
import { UsageError } from "./args.ts";
import type { CommandContext } from "./command.ts";
import { ExitCode } from "./exit_codes.ts";

/**
 * Parses a Go duration (`300ms`, `30s`, `5m`, `1h30m`), or `0` / `off` /
 * `none` for "never", into milliseconds.
 *
 * @param text The flag value.
 * @returns Milliseconds (0 = never).
 * @throws {UsageError} For anything else, or a negative duration.
 *
 * @example
 * ```ts ignore
 * console.assert(parseIdleTtl("5m") === 300_000);
 * ```
 */
export function parseIdleTtl(text: string): number {
  const t = text.trim().toLowerCase();
  if (t === "0" || t === "off" || t === "none") return 0;
  if (t.startsWith("-")) {
    throw new UsageError(`parse --idle-ttl ${JSON.stringify(text)}: must not be negative`);
  }
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (const m of t.matchAll(re)) {
    total += Number(m[1]) * units[m[2]];
    matched += m[0].length;
  }
  if (matched === 0 || matched !== t.length) {
    throw new UsageError(
      `--idle-ttl ${
        JSON.stringify(text)
      } is not a duration: use e.g. 30s, 5m, 1h, or 0/off to never unload`,
    );
  }
  return total;
}

/**
 * Runs the daemon until interrupted.
 *
 * @param ctx The command context.
 * @returns The exit code.
 *
 * @example
 * ```ts ignore
 * const code = await serve(ctx);
 * ```
 */
export async function serve(ctx: CommandContext): Promise<number> {
  const { flags, global, out } = ctx;
  const threads = flags.int("threads", { min: 1 });
  const idle = flags.string("idle-ttl");
  const idleTtlMs = idle === undefined ? undefined : parseIdleTtl(idle);
  const ttl = flags.string("ttl");
  const ttlMs = ttl === undefined ? undefined : parseIdleTtl(ttl) || undefined;
  const root = global.dataRoot ?? dataRoot();
  let lost: unknown;
  let wake!: () => void;
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const daemon = await serveDaemon({
    dataRoot: root,
    threads,
    idleTtlMs,
    ttlMs,
    onLeaseLost: (err) => {
      lost = err;
      wake();
    },
  });
  const unlisten = onStopSignal(wake);
  try {
    out.stderr.write(
      `modeld owner started: instance=${daemon.instanceId} pid=${Deno.pid} data_root=${root} ` +
        `endpoint=${daemon.endpoint} backend=llama threads=${threads ?? "cores"}\n`,
    );
    out.stderr.write("Ctrl-C or SIGTERM stops it (the lease is released).\n");
    if (out.isJson) {
      out.line(JSON.stringify({ endpoint: daemon.endpoint, instance_id: daemon.instanceId }));
    } else {
      out.line(daemon.endpoint);
    }
    await out.flush();
    await stopped;
  } finally {
    unlisten();
    await daemon.close();
  }
  if (lost !== undefined) {
    out.stderr.write(`modeld: lost lease, shutting down: ${(lost as Error).message ?? lost}\n`);
    return ExitCode.Error;
  }
  out.stderr.write(`modeld owner stopped: instance=${daemon.instanceId} backend=llama\n`);
  return ExitCode.Ok;
}
