/**
 * `modeldconn status`: is modeld running, where, which backend and instance,
 * when the lease expires, and (v0.32.4+) the model slot's state and active
 * model. Exits 0 when running, 3 when not installed / not running / stale,
 * 4 when the lease holder does not answer.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(["status", "--json"]));
 * ```
 *
 * @module
 */

import type { DaemonStatus } from "../../gen/contenox/transport/v1/compute_pb.ts";
import { DaemonTooOldError } from "../errors.ts";
import { probe, type ProbeResult } from "../probe.ts";
import { UsageError } from "./args.ts";
import type { CommandContext } from "./command.ts";
import { ExitCode, exitCodeFor } from "./exit_codes.ts";
import { formatDuration } from "./output.ts";

/**
 * What `status --json` prints.
 *
 * @example
 * ```ts
 * import type { StatusReport } from "./status.ts";
 * const report: StatusReport = {
 *   state: "not_running", dataRoot: "/home/me/.contenox", endpoint: "", backend: "",
 *   instanceId: "", slot: null, skipped: [],
 * };
 * ```
 */
export interface StatusReport {
  /** `running`, `not_installed`, `not_running`, `stale` or `unreachable`. */
  state: ProbeResult["state"];
  /** The data root whose lease was read. */
  dataRoot: string;
  /** The endpoint the lease names ("" when not running). */
  endpoint: string;
  /** The backend the lease (or Health) names. */
  backend: string;
  /** The lease holder's instance id. */
  instanceId: string;
  /** When the lease expires (ISO time), when there is a lease. */
  leaseExpiresAt?: string;
  /** The lease holder's process id, when there is a lease. */
  pid?: number;
  /** The modeld binary found, when one was. */
  binary?: string;
  /** The lease file that is there but is not a lease, and why. */
  unreadableLease?: { path: string; reason: string };
  /** The model slot (v0.32.4+); `null` when the daemon predates it or is not running. */
  slot: {
    state: string;
    busyOperation: string;
    lastError: string;
    active: {
      modelName: string;
      type: string;
      digest: string;
      path: string;
      generation: number | string;
    } | null;
  } | null;
  /** Why `slot` is `null` although the daemon runs (e.g. it predates Status). */
  slotUnavailable?: string;
  /** Permission flags whose absence cut the search short. */
  skipped: string[];
  /** The error for a state other than `running`. */
  error?: { code: string; message: string };
}

/**
 * Runs `status`.
 *
 * @param ctx The command context.
 * @returns 0 when running, else the probe state's exit code.
 *
 * @example
 * ```ts ignore
 * const code = await status(ctx);
 * ```
 */
export async function status(ctx: CommandContext): Promise<number> {
  if (ctx.positionals.length > 0) {
    throw new UsageError(`status takes no arguments (got ${JSON.stringify(ctx.positionals[0])})`);
  }
  const call = ctx.call();
  const found = await probe({ ...call, dataRoot: ctx.global.dataRoot });
  const report: StatusReport = {
    state: found.state,
    dataRoot: found.dataRoot,
    endpoint: found.endpoint,
    backend: found.health?.backend || found.backend,
    instanceId: found.instanceId,
    slot: null,
    skipped: found.skipped,
  };
  if (found.lease) {
    report.leaseExpiresAt = found.lease.expiresAt.toISOString();
    report.pid = found.lease.pid;
  }
  if (found.binary) report.binary = found.binary;
  if (found.unreadableLease) {
    const { path, reason } = found.unreadableLease;
    report.unreadableLease = { path, reason };
  }
  if (found.error) report.error = { code: found.error.code, message: found.error.message };

  if (found.state === "running") {
    await using client = ctx.client();
    try {
      report.slot = slotOf(await client.status(call));
    } catch (err) {
      if (!(err instanceof DaemonTooOldError)) throw err;
      report.slotUnavailable = `this modeld predates slot status (added in ${err.requiredVersion})`;
    }
  }

  if (ctx.out.isJson) ctx.out.json(report);
  else printHuman(ctx, report);
  return found.error ? exitCodeFor(found.error) : ExitCode.Ok;
}

function slotOf(s: DaemonStatus): NonNullable<StatusReport["slot"]> {
  const a = s.active;
  return {
    state: s.state,
    busyOperation: s.busyOperation,
    lastError: s.lastError,
    active: a && (a.modelName !== "" || a.path !== "")
      ? {
        modelName: a.modelName,
        type: a.type,
        digest: a.digest,
        path: a.path,
        generation: a.generation <= BigInt(Number.MAX_SAFE_INTEGER)
          ? Number(a.generation)
          : a.generation.toString(),
      }
      : null,
  };
}

function printHuman(ctx: CommandContext, r: StatusReport): void {
  const out = ctx.out;
  const start = `modeld serve --data-root ${r.dataRoot}`;
  const rows: [string, string][] = [];
  const noLease = (): [string, string][] =>
    r.unreadableLease
      ? [["data root", r.dataRoot], [
        "lease",
        `${r.unreadableLease.path} is unreadable: ${r.unreadableLease.reason}`,
      ]]
      : [["data root", `${r.dataRoot} (no lease)`]];
  const expires = r.leaseExpiresAt ? new Date(r.leaseExpiresAt) : undefined;
  const until = expires ? expires.getTime() - Date.now() : 0;
  switch (r.state) {
    case "running":
      out.line("modeld is running");
      rows.push(["endpoint", r.endpoint], ["backend", r.backend || "(unknown)"]);
      rows.push(["instance", r.instanceId]);
      if (expires) {
        rows.push([
          "lease",
          `renewed, expires ${expires.toISOString()} (in ${formatDuration(until)})`,
        ]);
      }
      if (r.slot) {
        rows.push([
          "slot",
          `${r.slot.state || "(unknown)"}${
            r.slot.busyOperation ? ` (${r.slot.busyOperation})` : ""
          }`,
        ]);
        const a = r.slot.active;
        rows.push([
          "active model",
          a ? `${a.modelName || a.path} (${a.type}), generation ${a.generation}` : "none",
        ]);
        if (r.slot.lastError) rows.push(["last error", r.slot.lastError]);
      } else if (r.slotUnavailable) {
        rows.push(["slot", `unknown: ${r.slotUnavailable}`]);
      }
      rows.push(["data root", r.dataRoot]);
      break;
    case "not_installed":
      out.line("modeld is not installed");
      rows.push(...noLease(), ["binary", "not found"]);
      break;
    case "not_running":
      out.line("modeld is not running");
      rows.push(...noLease());
      if (r.binary) rows.push(["binary", r.binary]);
      break;
    case "stale":
      out.line("modeld is not running: its lease expired (the daemon may have crashed)");
      rows.push(["data root", r.dataRoot], ["instance", `${r.instanceId} (pid ${r.pid ?? "?"})`]);
      if (expires) rows.push(["lease", `expired ${expires.toISOString()}`]);
      break;
    case "unreachable":
      out.line("modeld holds a lease but does not answer");
      rows.push(["endpoint", r.endpoint || "(none)"], ["instance", r.instanceId]);
      rows.push(["data root", r.dataRoot]);
      if (r.error) rows.push(["error", r.error.message]);
      break;
  }
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  for (const [k, v] of rows) out.line(`  ${`${k}:`.padEnd(width)} ${v}`);

  switch (r.state) {
    case "not_installed":
      out.line();
      out.line("Install it with `contenox setup` (or put modeld on PATH, or set");
      out.line("CONTENOX_MODELD_BIN), then start it with:");
      out.line(`  ${start}`);
      break;
    case "not_running":
      out.line();
      out.line("Start it with:");
      out.line(`  ${start}`);
      break;
    case "stale":
      out.line();
      out.line("Restart it with:");
      out.line(`  ${start}`);
      break;
    case "unreachable":
      out.line();
      out.line("Check that the process is healthy, or restart it with:");
      out.line(`  ${start}`);
      break;
  }
  if (r.skipped.length > 0 && r.state !== "running") {
    out.line();
    out.line(
      `(Without ${
        mergeFlags(r.skipped).join(" ")
      } the CLI could not check whether or where modeld is installed.)`,
    );
  }
}

/**
 * Merges repeated permission flags: `--allow-env=A --allow-env=B` → `--allow-env=A,B`.
 *
 * @param flags Flags with values.
 * @returns One flag per permission, values in order.
 *
 * @example
 * ```ts
 * import { mergeFlags } from "./status.ts";
 * console.assert(mergeFlags(["--allow-env=A", "--allow-env=B"])[0] === "--allow-env=A,B");
 * ```
 */
export function mergeFlags(flags: readonly string[]): string[] {
  const merged = new Map<string, string[]>();
  for (const flag of flags) {
    const eq = flag.indexOf("=");
    const name = eq < 0 ? flag : flag.slice(0, eq);
    const values = merged.get(name) ?? [];
    if (eq >= 0) {
      for (const v of flag.slice(eq + 1).split(",")) if (!values.includes(v)) values.push(v);
    }
    merged.set(name, values);
  }
  return [...merged].map(([name, values]) => values.length ? `${name}=${values.join(",")}` : name);
}
