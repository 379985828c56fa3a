/**
 * The generated descriptors a {@linkcode Session} needs once it exists: the
 * Decode method and a closed `ContextReport`. `session.ts` loads this module
 * when a session is opened (a dial has loaded the generated code by then), so
 * that importing the package loads no generated code (issue 10).
 *
 * @example
 * ```ts
 * import { closedContextReport, decodeMethod } from "./session_wire.ts";
 * console.assert(decodeMethod.name === "Decode" && closedContextReport().closed);
 * ```
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import {
  Compute,
  type ContextReport,
  ContextReportSchema,
} from "../gen/contenox/transport/v1/compute_pb.ts";

/**
 * The Decode RPC's descriptor, for `Connection.serverStream`.
 *
 * @example
 * ```ts
 * import { decodeMethod } from "./session_wire.ts";
 * console.assert(decodeMethod.methodKind === "server_streaming");
 * ```
 */
export const decodeMethod: typeof Compute.method.decode = Compute.method.decode;

/**
 * What `explainContext` returns when the report cannot be had: Go's
 * `ContextReport{Closed: true}`.
 *
 * @returns A report with only `closed` set.
 *
 * @example
 * ```ts
 * import { closedContextReport } from "./session_wire.ts";
 * console.assert(closedContextReport().residentTokens === 0);
 * ```
 */
export function closedContextReport(): ContextReport {
  return create(ContextReportSchema, { closed: true });
}
