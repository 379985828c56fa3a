/**
 * {@linkcode probe}: the offline lease check of `detect()` plus the daemon's
 * unfenced Health call on a fresh connection, which tells a live lease held by
 * a process that answers from one that does not (the "unreachable" state).
 *
 * @example
 * ```ts ignore
 * import { probe } from "@contenox/modeldconn";
 *
 * const p = await probe({ timeoutMs: 2000 });
 * if (p.state !== "running") console.error(p.error?.message);
 * ```
 *
 * @module
 */

import type { HealthResponse } from "../gen/contenox/transport/v1/compute_pb.ts";
import { type CallOptions, unary } from "./call.ts";
import { detect, type DetectResult, errorForState } from "./detect.ts";
import {
  type DaemonUnavailableError,
  DaemonUnreachableError,
  InvalidEndpointError,
  PermissionNeededError,
} from "./errors.ts";
import { dial } from "./dial.ts";
import type { Connection } from "./transport.ts";

/** The five probe states. */
export type ProbeState = DetectResult["state"] | "unreachable";

/** What {@linkcode probe} found. */
export interface ProbeResult extends Omit<DetectResult, "state"> {
  /** The probe state. */
  state: ProbeState;
  /** The daemon's Health answer, when it gave one. */
  health?: HealthResponse;
  /** The typed error for every state but `running`. */
  error?: DaemonUnavailableError;
}

/** Options of {@linkcode probe}. */
export interface ProbeOptions extends CallOptions {
  /** The data root; default `setDataRoot()` / `$CONTENOX_DATA_ROOT` / `~/.contenox`. */
  dataRoot?: string;
}

/**
 * Probes the daemon: reads the lease and, when it is live, calls Health
 * (unfenced) on a fresh connection that is closed afterwards. Running requires
 * `ready` and the answering instance to be the lease holder.
 *
 * @param options Data root, signal and timeout (no timeout by default:
 *   a refused connection fails at once).
 * @returns The state, the lease facts and the typed error when not running.
 * @throws {PermissionNeededError} When the lease or the endpoint may not be read or dialled.
 *
 * @example
 * ```ts ignore
 * const p = await probe();
 * console.log(p.state, p.endpoint, p.health?.backend);
 * ```
 */
export async function probe(options: ProbeOptions = {}): Promise<ProbeResult> {
  const found = await detect({
    dataRoot: options.dataRoot,
    signal: options.signal,
    timeoutMs: options.timeoutMs,
  });
  if (found.state !== "running") {
    return { ...found, error: errorForState(found) };
  }
  const unreachable = (reason: string, cause?: unknown): ProbeResult => ({
    ...found,
    state: "unreachable",
    error: new DaemonUnreachableError(found.dataRoot, found.endpoint, reason, { cause }),
  });
  if (found.endpoint === "") return unreachable("the lease names no endpoint");
  let dialed: Connection;
  try {
    dialed = await dial(found.endpoint, "");
  } catch (err) {
    // Go's probe: an endpoint net.Dial cannot dial is an unreachable daemon.
    if (err instanceof InvalidEndpointError) return unreachable(err.message, err);
    throw err;
  }
  using conn = dialed;
  let health: HealthResponse;
  try {
    health = await unary(conn, "Health", options, (o) => conn.rpc.health({}, o));
  } catch (err) {
    if (err instanceof PermissionNeededError) throw err;
    return unreachable((err as Error).message, err);
  }
  const problem = healthProblem(health, found.instanceId);
  if (problem) return { ...unreachable(problem), health };
  return { ...found, health };
}

/**
 * Why a Health answer does not prove the lease holder is serving: it is not
 * ready, or another instance answered. The one rule for `probe()` and for
 * every connection the client dials.
 *
 * @param health The daemon's Health answer.
 * @param leaseInstance The lease's instance id ("" = do not compare).
 * @returns The reason, or `undefined` when the answer is good.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { HealthResponseSchema } from "../gen/contenox/transport/v1/compute_pb.ts";
 * import { healthProblem } from "./probe.ts";
 * const h = create(HealthResponseSchema, { ready: true, instanceId: "b" });
 * console.assert(healthProblem(h, "a") === "instance b answered, the lease names a");
 * ```
 */
export function healthProblem(health: HealthResponse, leaseInstance: string): string | undefined {
  if (!health.ready) return "the daemon reported not ready";
  if (leaseInstance !== "" && health.instanceId !== leaseInstance) {
    return `instance ${health.instanceId || "(none)"} answered, the lease names ${leaseInstance}`;
  }
  return undefined;
}
