/**
 * The wire model of modeld's Compute service: every message type generated
 * from `proto/contenox/transport/v1/compute.proto` (field names in camelCase;
 * the daemon's Go JSON names are in the proto), and {@linkcode WireInit}, the
 * plain-object initialiser the client's methods accept. Most code needs none
 * of it: `@contenox/modeldconn` re-exports the types its methods return.
 *
 * The protobuf-es schemas (`*Schema`) are not exported: their types are built
 * from protobuf-es internals that cannot be documented. Pass plain objects
 * ({@linkcode WireInit}); the client fills in the rest.
 *
 * @example A DecodeConfig as a plain object
 * ```ts
 * import type { DecodeConfig, WireInit } from "@contenox/modeldconn/wire";
 *
 * const config: WireInit<DecodeConfig> = { maxTokens: 16, temperature: 0 };
 * console.assert(config.maxTokens === 16);
 * ```
 *
 * @module
 */

export type {
  ActiveModel,
  AdapterSpec,
  CloseSessionRequest,
  CloseSessionResponse,
  ColdKVBlock,
  Config,
  ContextManifest,
  ContextOverflowDetail,
  ContextReport,
  DaemonStatus,
  DecodeChunk,
  DecodeConfig,
  DecodeRequest,
  DeviceInfo,
  DiskStatsRequest,
  EmbedRequest,
  EmbedResponse,
  EnsurePrefixRequest,
  ExplainContextRequest,
  HealthRequest,
  HealthResponse,
  ListModelsRequest,
  ListModelsResponse,
  LoadModelRequest,
  ManifestSegment,
  ModelInfo,
  NodeDiskStats,
  NodeModel,
  OpenSessionRequest,
  OpenSessionResponse,
  PrefillSuffixRequest,
  PrefixInput,
  PrefixStatus,
  PushManifest,
  PushModelChunk,
  PushModelResponse,
  RemoveModelRequest,
  RemoveModelResponse,
  ResidencyCapabilities,
  ResidencyReport,
  RestoreRequest,
  RestoreResponse,
  SessionSnapshot,
  SnapshotRequest,
  StatusRequest,
  StructuredOutputConfig,
  SuffixInput,
  SuffixStatus,
  ToolCall,
  ToolCallFunction,
  UnloadModelRequest,
  UnloadModelResponse,
} from "./gen/contenox/transport/v1/compute_pb.ts";
export type { WireInit } from "./lib/wire_init.ts";
export type { Message, UnknownField } from "@bufbuild/protobuf";
export { WireType } from "@bufbuild/protobuf/wire";
