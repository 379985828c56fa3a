/**
 * A Deno client for **modeld**, the local LLM inference daemon of the contenox
 * runtime (v0.32.3 to v0.36.x). It finds the daemon through its lease file,
 * speaks its gRPC wire format (JSON bodies, owner fence, error tokens) over a
 * loopback HTTP/2 connection, and exposes sessions with warm prefix reuse and
 * streamed decoding, plus the daemon's model slot and model store.
 *
 * Permissions: `--allow-read=<data root>` and `--allow-net=127.0.0.1`.
 *
 * @example One-off completion
 * ```ts ignore
 * import { buildContext, ModeldClient } from "@contenox/modeldconn";
 *
 * await using client = new ModeldClient();
 * await using session = await client.openSession({ name: "qwen3-4b", type: "llama" });
 * const ctx = await buildContext([
 *   { role: "system", content: "You are terse." },
 *   { role: "user", content: "What is 2+2?" },
 * ]);
 * await session.ensurePrefix(ctx.prefix);
 * await session.prefillSuffix(ctx.suffix);
 * for await (const delta of session.decode({ maxTokens: 64 })) {
 *   await Deno.stdout.write(new TextEncoder().encode(delta.text));
 * }
 * ```
 *
 * @module
 */

export { dataRoot, setDataRoot } from "./lib/data_root.ts";
export { available, backend, serveableBackend, snapshotDir } from "./lib/availability.ts";
export { detect, type DetectOptions, type DetectResult, type DetectState } from "./lib/detect.ts";
export { probe, type ProbeOptions, type ProbeResult, type ProbeState } from "./lib/probe.ts";
export { type LeaseRecord, readLease } from "./lib/lease.ts";
export { type ClientOptions, ModeldClient, type ModeldTarget, RemoteNode } from "./lib/client.ts";
export {
  type AdapterSpecInit,
  type LoadModelOptions,
  type ModelCallOptions,
  type ModelConfig,
  ModeldNode,
  type ModelRef,
  type PushModelOptions,
  type UnloadModelOptions,
} from "./lib/node.ts";
export type { CallOptions } from "./lib/call.ts";
export {
  type DecodeConfigInit,
  type PrefixInputInit,
  Session,
  type SnapshotInput,
  type SuffixInputInit,
} from "./lib/session.ts";
export { type DecodeDelta, type DecodeResult, DecodeStream } from "./lib/decode_stream.ts";
export type { PushProgress, PushSource } from "./lib/push.ts";
export {
  buildContext,
  type BuildContextOptions,
  type BuiltContext,
  type ChatMessage,
  type ChatRole,
  type ChatToolCall,
  manifestDigest,
  type ManifestIdentity,
  type PromptPlanner,
  type ToolDefinition,
} from "./lib/context.ts";
export * from "./lib/errors.ts";
// The wire model: every message type and schema of the Compute service (the
// schemas work with `create()` from @bufbuild/protobuf), and the types they use.
export * from "./gen/contenox/transport/v1/compute_pb.ts";
export type { Message, MessageInitShape } from "@bufbuild/protobuf";
export type { ComputeClient, Connection } from "./lib/transport.ts";
export { DEFAULT_LIMITS, type TransportLimits } from "./lib/transport.ts";
export type { ContextManifestInit } from "./lib/context.ts";
export type { BinarySource } from "./lib/locate.ts";
export type { ReadLeaseOptions } from "./lib/lease.ts";
