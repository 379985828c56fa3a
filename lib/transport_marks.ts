/**
 * What the transport knows about a failed call that its error code alone does
 * not tell: that the connection itself broke ({@linkcode isConnectionDrop}), and
 * that the daemon never processed the call, so sending it again is safe
 * ({@linkcode isUnprocessed}). Errors are marked where they are made; these
 * predicates walk the `cause` chain. No npm module is loaded here, so code that
 * only checks errors never loads the HTTP/2 stack.
 *
 * @example
 * ```ts
 * import { isConnectionDrop, markDropped } from "./transport_marks.ts";
 * const err = markDropped(new Error("reset"));
 * console.assert(isConnectionDrop(new Error("outer", { cause: err })));
 * ```
 *
 * @module
 */

const drops = new WeakSet<object>();
const unprocessed = new WeakSet<object>();

/**
 * Marks `err` as the connection breaking (reset, GOAWAY, FIN, RST, refused stream).
 *
 * @param err The error to mark.
 * @returns `err`.
 *
 * @example
 * ```ts
 * import { isConnectionDrop, markDropped } from "./transport_marks.ts";
 * console.assert(isConnectionDrop(markDropped(new Error("EOF"))));
 * ```
 */
export function markDropped<E extends object>(err: E): E {
  drops.add(err);
  return err;
}

/**
 * Marks `err` as a call the daemon never processed (REFUSED_STREAM, above a
 * GOAWAY's last stream id).
 *
 * @param err The error to mark.
 * @returns `err`.
 *
 * @example
 * ```ts
 * import { isUnprocessed, markUnprocessed } from "./transport_marks.ts";
 * console.assert(isUnprocessed(markUnprocessed(new Error("refused"))));
 * ```
 */
export function markUnprocessed<E extends object>(err: E): E {
  unprocessed.add(err);
  return err;
}

/**
 * Whether a failure was the connection itself breaking (reset, GOAWAY, FIN,
 * RST, refused stream, handshake timeout) rather than a status the daemon sent.
 *
 * @param err What a call threw (or any error in its `cause` chain).
 * @returns `true` for a dropped or refused connection.
 *
 * @example
 * ```ts
 * import { isConnectionDrop } from "./transport_marks.ts";
 * console.assert(!isConnectionDrop(new Error("model_busy")));
 * ```
 */
export function isConnectionDrop(err: unknown): boolean {
  return someCause(err, (e) => drops.has(e as object));
}

/**
 * Whether a failed call never reached the daemon's handler (REFUSED_STREAM, a
 * stream above a GOAWAY's last stream id), so sending it again is safe.
 *
 * @param err What a call threw.
 * @returns `true` when the daemon never processed the call.
 *
 * @example
 * ```ts
 * import { isUnprocessed } from "./transport_marks.ts";
 * console.assert(!isUnprocessed(new Error("EOF")));
 * ```
 */
export function isUnprocessed(err: unknown): boolean {
  return someCause(err, (e) => unprocessed.has(e as object));
}

function someCause(err: unknown, test: (e: unknown) => boolean): boolean {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (typeof e === "object" && test(e)) return true;
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}
