/**
 * grpc-go's rule for `grpc-status-details-bin`, applied before Connect reads a
 * status: details that do not decode are ignored, details whose code differs
 * from `grpc-status` make the status INTERNAL (Connect would otherwise let the
 * details override the status).
 *
 * @example
 * ```ts
 * import { reconcileStatusDetails } from "./status_details.ts";
 * const trailer = new Headers({ "grpc-status": "9", "grpc-status-details-bin": "!!" });
 * reconcileStatusDetails(trailer);
 * console.assert(!trailer.has("grpc-status-details-bin"));
 * ```
 *
 * @module
 */

import { fromBinary } from "@bufbuild/protobuf";
import { StatusSchema } from "../gen/google/rpc/status_pb.ts";

/** Connect's `Code.Internal`. */
const INTERNAL = 13;

/**
 * Drops undecodable details and turns a code mismatch into INTERNAL, in place.
 *
 * @param headers A status's headers or trailers.
 *
 * @example
 * ```ts
 * import { reconcileStatusDetails } from "./status_details.ts";
 * const trailer = new Headers({ "grpc-status": "0" });
 * reconcileStatusDetails(trailer);
 * console.assert(trailer.get("grpc-status") === "0");
 * ```
 */
export function reconcileStatusDetails(headers: Headers): void {
  const bin = headers.get("grpc-status-details-bin");
  if (bin === null) return;
  headers.delete("grpc-status-details-bin");
  let details;
  try {
    details = fromBinary(StatusSchema, base64Decode(bin));
  } catch {
    return; // undecodable: grpc-status and grpc-message stand
  }
  const code = Number.parseInt(headers.get("grpc-status") ?? "", 10);
  if (details.code === code) {
    headers.set("grpc-status-details-bin", bin);
    return;
  }
  let message = headers.get("grpc-message") ?? "";
  try {
    message = decodeURIComponent(message);
  } catch { /* keep the raw text */ }
  headers.set("grpc-status", String(INTERNAL));
  headers.set(
    "grpc-message",
    encodeURIComponent(
      `grpc-status-details-bin mismatch: grpc-status=${code}, grpc-message=${
        JSON.stringify(message)
      }, grpc-status-details-bin code=${details.code}`,
    ),
  );
}

function base64Decode(text: string): Uint8Array {
  const std = text.replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  if (/[^A-Za-z0-9+/]/.test(std)) throw new Error("not base64");
  const bin = atob(std + "=".repeat((4 - std.length % 4) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
