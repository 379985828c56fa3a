/**
 * {@linkcode dial}: opens a connection, loading the transport (HTTP/2,
 * Connect-ES, protobuf-es and the generated service) on the first dial.
 * Everything that never dials (discovery, `available()`, `buildContext`, the
 * error classes) loads none of it: about 100 ms of CPU at start-up (issue 10).
 *
 * @example
 * ```ts ignore
 * import { dial } from "./dial.ts";
 *
 * await using conn = await dial("127.0.0.1:40517", "5f0c3c1e-…", { healthTimeoutMs: 2_000 });
 * console.log((await conn.rpc.health({})).ready);
 * ```
 *
 * @module
 */

import type { TransportLimits } from "./limits.ts";
import type { Connection } from "./transport.ts";

/**
 * Opens a connection (the TCP dial happens on the first call), loading the
 * transport first when this is the process's first dial.
 *
 * @param endpoint The daemon's `host:port`.
 * @param instanceId The lease instance id to fence with ("" = unfenced).
 * @param limits Bounds overriding `DEFAULT_LIMITS`.
 * @returns The connection.
 * @throws {InvalidEndpointError} When `endpoint` is not a `host:port` Go could dial.
 * @throws {PermissionNeededError} When the script may not connect to `endpoint`.
 *
 * @example
 * ```ts ignore
 * import { dial } from "./dial.ts";
 * using conn = await dial("127.0.0.1:40517", "");
 * console.log(conn.endpoint, conn.limits.healthTimeoutMs);
 * ```
 */
export async function dial(
  endpoint: string,
  instanceId: string,
  limits: TransportLimits = {},
): Promise<Connection> {
  const transport = await import("./transport.ts");
  return transport.dial(endpoint, instanceId, limits);
}
