/**
 * The wire model of modeld's Compute service, generated from
 * `proto/contenox/transport/v1/compute.proto`: every message type and its
 * schema (the schemas work with `create()`, `toJson()` and `fromJson()` from
 * `@bufbuild/protobuf`), the service descriptor, and the transport types the
 * client is built on. Most code needs none of it: `@contenox/modeldconn`
 * re-exports the types its methods return.
 *
 * @example Build a DecodeConfig message
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { DecodeConfigSchema } from "@contenox/modeldconn/wire";
 *
 * const config = create(DecodeConfigSchema, { maxTokens: 16, temperature: 0 });
 * console.assert(config.maxTokens === 16);
 * ```
 *
 * @module
 */

export * from "./gen/contenox/transport/v1/compute_pb.ts";
export type { Message, MessageInitShape } from "@bufbuild/protobuf";
export type { ComputeClient, Connection } from "./lib/transport.ts";
