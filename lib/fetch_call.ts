/**
 * Client-streaming calls (PushModel) over Deno's own HTTP/2 client (`fetch`
 * with prior knowledge), not `node:http2`. Deno 2.9.3's `node:http2` calls a
 * write back once it copied the data, not once it sent it, and queues without
 * bound what the daemon's flow-control window does not take yet
 * (denoland/deno#36044, fixed after the 2.9.3 this project must pin): pushing
 * a file read faster than the daemon stores it kept most of the file in
 * memory (RSS +430 MiB for a 256 MiB push, +1.4 GiB for 1 GiB). `fetch`
 * pulls the request body only as HTTP/2 flow control allows, so a push holds
 * a frame or two whatever the file's size.
 *
 * `fetch` does not show trailers. A client-streaming call answers with one
 * message and status OK, or with a trailers-only error (the status in the
 * response headers), which is what grpc-go and this project's daemon send;
 * so a reply of exactly one whole message on a cleanly ended body is the
 * success, and a status in the headers is judged as in `grpc_call.ts`.
 *
 * @example
 * ```ts ignore
 * import { clientStreamViaFetch } from "./fetch_call.ts";
 *
 * const payload = await clientStreamViaFetch(target, "/contenox.transport.v1.Compute/PushModel", envelopes, { signal });
 * ```
 *
 * @module
 */

import { Code, ConnectError } from "@connectrpc/connect";
import { EnvelopeSplitter, EnvelopeTooLargeError } from "./envelope.ts";
import {
  abortError,
  CONTENT_TYPE,
  FENCE_HEADER,
  grpcTimeout,
  MAX_TIMER_MS,
  responseError,
  statusError,
  transportFailure,
} from "./grpc_call.ts";

/** Where a fetch call goes. */
export interface FetchTarget {
  /** `http://host:port`. */
  baseUrl: string;
  /** `host:port`, for error messages. */
  endpoint: string;
  /** The fence ("" = none). */
  instanceId: string;
  /** The largest message received. */
  maxBytes: number;
  /** The HTTP/2-only client (created on first use, closed with the connection). */
  client(): Deno.HttpClient;
}

/** The call's signal and deadline. */
export interface FetchCallOptions {
  /** The caller's signal. */
  signal?: AbortSignal;
  /** The deadline, also sent as `grpc-timeout`; `undefined` for none. */
  timeoutMs?: number;
}

/**
 * Sends the request envelopes as they are produced (each pulled only when
 * HTTP/2 flow control has room) and returns the one response message.
 *
 * @param target The daemon.
 * @param path `/package.Service/Method`.
 * @param envelopes The request messages, as whole envelopes.
 * @param options Signal and deadline.
 * @returns The response message's payload (Go JSON).
 * @throws {ConnectError} The call's failure; an error of `envelopes` itself is rethrown as is.
 *
 * @example
 * ```ts ignore
 * const payload = await clientStreamViaFetch(target, path, frames, {});
 * ```
 */
export async function clientStreamViaFetch(
  target: FetchTarget,
  path: string,
  envelopes: AsyncIterable<Uint8Array>,
  options: FetchCallOptions,
): Promise<Uint8Array> {
  const { signal, timeoutMs } = options;
  if (signal?.aborted) throw abortError(signal.reason);
  const controller = new AbortController();
  const onAbort = () => controller.abort(abortError(signal?.reason));
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer = timeoutMs === undefined || timeoutMs > MAX_TIMER_MS ? undefined : setTimeout(() => {
    controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
  }, timeoutMs);
  let sourceError: { error: unknown } | undefined;
  const source = envelopes[Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>({
    async pull(out) {
      try {
        const next = await source.next();
        if (next.done) out.close();
        else out.enqueue(next.value);
      } catch (error) {
        sourceError = { error };
        out.error(error);
        controller.abort(error);
      }
    },
    async cancel() {
      await source.return?.();
    },
  }, { highWaterMark: 0 });
  const headers: Record<string, string> = {
    "content-type": CONTENT_TYPE,
    te: "trailers",
  };
  if (timeoutMs !== undefined) headers["grpc-timeout"] = grpcTimeout(timeoutMs);
  if (target.instanceId !== "") headers[FENCE_HEADER] = target.instanceId;
  const failed = (err: unknown): unknown => {
    if (sourceError) return sourceError.error;
    if (controller.signal.aborted) return controller.signal.reason;
    return transportFailure(err, target.endpoint);
  };
  try {
    let res: Response;
    try {
      res = await fetch(`${target.baseUrl}${path}`, {
        method: "POST",
        headers,
        body,
        client: target.client(),
        signal: controller.signal,
        // Streaming request bodies need half duplex (not yet in lib.dom's RequestInit).
        duplex: "half",
      } as RequestInit);
    } catch (err) {
      throw failed(err);
    }
    const header = new Headers(res.headers);
    const rejected = responseError(res.status, header);
    if (rejected) {
      await res.body?.cancel().catch(() => {});
      throw rejected;
    }
    if (header.has("grpc-status")) {
      // Trailers-only: the status is all there is.
      await res.body?.cancel().catch(() => {});
      throw statusError(header, new Headers()) ?? new ConnectError(
        "protocol error: missing output message for unary method",
        Code.Unimplemented,
      );
    }
    const messages: Uint8Array[] = [];
    const splitter = new EnvelopeSplitter(target.maxBytes);
    try {
      for await (const chunk of res.body ?? []) {
        splitter.push(chunk, (flags, data) => {
          if (flags !== 0) {
            throw new ConnectError("protocol error: received a compressed message", Code.Internal);
          }
          messages.push(data);
        });
      }
    } catch (err) {
      if (err instanceof EnvelopeTooLargeError) {
        throw new ConnectError(err.message, Code.ResourceExhausted);
      }
      if (err instanceof ConnectError) throw err;
      throw failed(err);
    }
    if (splitter.buffered > 0 || messages.length === 0) {
      throw transportFailure(
        new Error("the reply ended without a whole message (reset or closed by the daemon)"),
        target.endpoint,
      );
    }
    if (messages.length > 1) {
      throw new ConnectError(
        "protocol error: received extra output message for unary method",
        Code.Unimplemented,
      );
    }
    return messages[0];
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    controller.abort(); // stops an upload the daemon no longer reads (it answered early)
  }
}
