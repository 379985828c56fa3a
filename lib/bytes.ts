/**
 * Byte-array helpers shared by the context builder, the HTTP/2 session and
 * the daemon's gRPC server.
 *
 * @module
 */

/**
 * Joins byte arrays into one new array.
 *
 * @param parts The arrays, in order.
 * @param length Their total length, when the caller already counted it.
 * @returns The joined bytes.
 *
 * @example
 * ```ts
 * import { concatBytes } from "./bytes.ts";
 * const joined = concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]);
 * console.assert(joined.join() === "1,2,3");
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[], length?: number): Uint8Array {
  let total = length ?? 0;
  if (length === undefined) { for (const p of parts) total += p.length; }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
