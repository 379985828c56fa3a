/**
 * A fake modeld for tests, demos and your own test suites: it serves
 * modeld's gRPC wire format (content-subtype `contenoxtransportjson`, Go JSON
 * bodies, fence header, `"<token>: <text>"` statuses, overflow `ErrorInfo`
 * details) on `127.0.0.1`, with the in-memory reference semantics of the Go
 * project's `transport.MemoryService` (a token is a code point; Decode yields
 * `"x"` per token unless you script a reply), and owns a data root's lease
 * exactly like the daemon, so discovery works unchanged.
 *
 * Two versions are imitated: `v0.36.0` (single model slot, generation-fenced
 * handles, model store, connection-bound sessions; the default) and `v0.32.3`
 * (the 8 original RPCs; everything else is `UNIMPLEMENTED`).
 *
 * Permissions: `--allow-net=127.0.0.1`, `--allow-read` and `--allow-write` on
 * the data root (by default a new directory under the system temp directory,
 * e.g. `--allow-read=/tmp --allow-write=/tmp`), and `--allow-sys=statfs` if you
 * call DiskStats.
 *
 * @example Script a reply and talk to the daemon through the client's transport
 * ```ts ignore
 * import { startTestDaemon } from "@contenox/modeldconn/testing";
 *
 * await using daemon = await startTestDaemon({ reply: "Hello there!", chunkDelayMs: 5 });
 * // Point the client at daemon.dataRoot (it finds the lease) or at daemon.endpoint,
 * // fenced with daemon.instanceId.
 * console.log(daemon.endpoint, daemon.instanceId);
 * // ... run the code under test ...
 * console.log(daemon.requests.map((r) => r.method)); // ["Health", "OpenSession", ...]
 * console.log(daemon.openSessions); // 0 once the client closed its session
 * ```
 *
 * @module
 */

export { startTestDaemon, TestDaemon, type TestDaemonOptions } from "./lib/testing/daemon.ts";
export type { DaemonServer } from "./lib/daemon/server.ts";
export type { CallContext, RequestRecord } from "./lib/daemon/grpc_server.ts";
export {
  countTokens,
  type DecodeScript,
  type Reply,
  type ReplyDecodeConfig,
  type ReplyRequest,
  splitReply,
  type ToolCallInit,
} from "./lib/testing/memory_service.ts";
export type { DaemonVersion, OverflowDetail } from "./lib/daemon/sentinels.ts";
