/**
 * A Deno client for **modeld**, the local LLM inference daemon of the contenox
 * runtime (v0.32.3 to v0.36.x), and for the modeld-compatible llama.cpp daemon
 * in `@contenox/modeldconn/daemon`.
 *
 * - **One call**: {@linkcode generate} returns a completion,
 *   {@linkcode generateStream} streams it (deltas, or a `ReadableStream<string>`).
 * - **Conversations**: {@linkcode Chat} keeps the history and one warm session.
 * - **The client**: {@linkcode ModeldClient} with sessions ({@linkcode Session}:
 *   `ensurePrefix`, `prefillSuffix`, `decode`), the model slot and the model store.
 * - **Errors**: everything thrown is a {@linkcode ModeldError} subclass.
 * - **Discovery**: {@linkcode probe}, {@linkcode waitForDaemon}, {@linkcode available}.
 *
 * The generated wire types (every protobuf message and schema) are in
 * `@contenox/modeldconn/wire`.
 *
 * Permissions: `--allow-read=<data root> --allow-net=127.0.0.1`, and pass
 * `dataRoot` (or add `--allow-env=CONTENOX_DATA_ROOT,HOME` to use the default
 * `~/.contenox`).
 *
 * @example One-off completion
 * ```ts ignore
 * import { generate } from "@contenox/modeldconn";
 *
 * const { text, usage } = await generate({
 *   dataRoot: "/home/me/.contenox",
 *   model: "smollm2",
 *   prompt: "What is 2+2?",
 *   maxTokens: 32,
 * });
 * console.log(text, usage.stopReason);
 * ```
 *
 * @example A warm session by hand
 * ```ts ignore
 * import { buildContext, ModeldClient } from "@contenox/modeldconn";
 *
 * await using client = new ModeldClient({ dataRoot: "/home/me/.contenox" });
 * await using session = await client.openSession({ name: "smollm2" });
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

// The client and the high-level API.
export { type ClientOptions, ModeldClient, type ModeldTarget, RemoteNode } from "./lib/client.ts";
export {
  type DaemonChoice,
  generate,
  type GenerateOptions,
  generateStream,
} from "./lib/generate.ts";
export { Chat, type ChatOptions, type TurnCallOptions } from "./lib/chat.ts";
export { type GenerateResult, GenerateStream } from "./lib/turn.ts";
export { type SamplingOptions, type StopReason, type Usage } from "./lib/usage.ts";
export { defaultModel, type ModelInput, resolveModel, toModelRef } from "./lib/model.ts";
export { waitForDaemon, type WaitForDaemonOptions } from "./lib/wait.ts";

// Sessions and the daemon's RPCs.
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
  type ContextManifestInit,
  manifestDigest,
  type ManifestIdentity,
  type PromptPlanner,
  type ToolDefinition,
} from "./lib/context.ts";

// Errors.
export * from "./lib/errors.ts";

// Discovery.
export { dataRoot, setDataRoot } from "./lib/data_root.ts";
export { available, backend, serveableBackend, snapshotDir } from "./lib/availability.ts";
export { detect, type DetectOptions, type DetectResult, type DetectState } from "./lib/detect.ts";
export { probe, type ProbeOptions, type ProbeResult, type ProbeState } from "./lib/probe.ts";
export { type LeaseRecord, readLease, type ReadLeaseOptions } from "./lib/lease.ts";

// Transport limits and default deadlines (see the README's guarantees).
export { DEFAULT_LIMITS, type TransportLimits } from "./lib/limits.ts";
export type { BinarySource } from "./lib/locate.ts";

// The wire types the methods above return (the rest: @contenox/modeldconn/wire).
export type {
  ActiveModel,
  ContextReport,
  DaemonStatus,
  HealthResponse,
  ModelInfo,
  NodeDiskStats,
  NodeModel,
  PrefixStatus,
  PushModelResponse,
  SessionSnapshot,
  SuffixStatus,
  ToolCall,
} from "./gen/contenox/transport/v1/compute_pb.ts";
