/**
 * One plaintext HTTP/2 connection to a modeld endpoint, speaking the daemon's
 * own wire format through Connect-ES: gRPC framing, content-subtype
 * `contenoxtransportjson`, Go-compatible JSON bodies and the owner fence header
 * on every call but Health.
 *
 * A {@linkcode Connection} is long-lived on purpose: v0.32.6+ daemons close
 * every session opened on a connection when that connection closes, so it
 * sends no keepalive pings and never closes itself while idle. Close it with
 * `close()` or `await using`.
 *
 * @example
 * ```ts ignore
 * import { dial } from "./transport.ts";
 *
 * await using conn = dial("127.0.0.1:40517", "5f0c3c1e-…");
 * const health = await conn.rpc.health({});
 * console.log(health.instanceId, health.backend);
 * ```
 *
 * @module
 */

import type { DescMessage } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createTransport } from "@connectrpc/connect/protocol-grpc";
import type { UniversalClientFn, UniversalClientRequest } from "@connectrpc/connect/protocol";
import { createNodeHttpClient, Http2SessionManager } from "@connectrpc/connect-node";
import { Compute } from "../gen/contenox/transport/v1/compute_pb.ts";
import { parseEndpoint } from "./endpoint.ts";
import { PermissionNeededError } from "./errors.ts";
import { quoteUnsafeIntegers, toGoJson } from "./go_json.ts";

/**
 * The gRPC content-type whose subtype selects modeld's JSON codec.
 *
 * @example
 * ```ts
 * import { CONTENT_TYPE } from "./transport.ts";
 * console.assert(CONTENT_TYPE.endsWith("+contenoxtransportjson"));
 * ```
 */
export const CONTENT_TYPE = "application/grpc+contenoxtransportjson";
/**
 * The metadata key carrying the lease instance id (the owner fence).
 *
 * @example
 * ```ts
 * import { FENCE_HEADER } from "./transport.ts";
 * console.assert(FENCE_HEADER === "x-contenox-owner-instance");
 * ```
 */
export const FENCE_HEADER = "x-contenox-owner-instance";

// Connect-ES only accepts its own gRPC content types; the bodies are JSON either way.
const CONNECT_JSON_CONTENT_TYPE = "application/grpc+json";
const MAX_MESSAGE_BYTES = 512 * 1024 * 1024; // the daemon's own limit since v0.33.0
const MAX_TIMER_MS = 2 ** 31 - 1; // the longest setTimeout Node allows
const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** A typed Connect client for the Compute service. */
export type ComputeClient = Client<typeof Compute>;

/**
 * A live connection to one daemon instance.
 *
 * @example
 * ```ts ignore
 * import { dial } from "./transport.ts";
 * using conn = dial("127.0.0.1:40517", "");
 * console.log(conn.endpoint, conn.closed);
 * ```
 */
export interface Connection extends Disposable, AsyncDisposable {
  /** The `host:port` this connection talks to. */
  readonly endpoint: string;
  /** The fence sent with every call but Health ("" = unfenced). */
  readonly instanceId: string;
  /** The Connect client. */
  readonly rpc: ComputeClient;
  /** Whether `close()` was called. */
  readonly closed: boolean;
  /** Closes the HTTP/2 session; calls in flight fail. Idempotent. */
  close(): void;
}

/**
 * Turns a lease endpoint (`host:port`, `[v6]:port`) into a base URL.
 *
 * @param endpoint The lease's `meta.endpoint`.
 * @returns `http://host:port`.
 *
 * @example
 * ```ts
 * import { endpointUrl } from "./transport.ts";
 * console.assert(endpointUrl("[::1]:9") === "http://[::1]:9");
 * ```
 */
export function endpointUrl(endpoint: string): string {
  return parseEndpoint(endpoint).url;
}

/**
 * The host part of an endpoint, as `--allow-net` wants it.
 *
 * @param endpoint `host:port` or `[v6]:port`.
 * @returns The host without port.
 *
 * @example
 * ```ts
 * import { endpointHost } from "./transport.ts";
 * console.assert(endpointHost("127.0.0.1:40517") === "127.0.0.1");
 * ```
 */
export function endpointHost(endpoint: string): string {
  return parseEndpoint(endpoint).dialHost;
}

/**
 * Opens a connection (lazily: the TCP dial happens on the first call).
 *
 * @param endpoint The daemon's `host:port`.
 * @param instanceId The lease instance id to fence with ("" = unfenced).
 * @returns The connection.
 * @throws {InvalidEndpointError} When `endpoint` is not a `host:port` Go could dial.
 * @throws {PermissionNeededError} When the script may not connect to `endpoint`.
 *
 * @example
 * ```ts ignore
 * import { dial } from "./transport.ts";
 * using conn = dial("127.0.0.1:40517", "");
 * console.log((await conn.rpc.health({})).ready);
 * ```
 */
export function dial(endpoint: string, instanceId: string): Connection {
  const target = parseEndpoint(endpoint); // wildcards dial loopback; see endpoint.ts
  // Ask first: a missing grant must be an error that names the flag, never a prompt.
  const netState = Deno.permissions.querySync({ name: "net", host: target.authority }).state;
  if (netState !== "granted") {
    throw new PermissionNeededError(
      "--allow-net",
      target.dialHost,
      `connect to modeld at ${endpoint}`,
    );
  }
  const baseUrl = target.url;
  const sessions = new Http2SessionManager(baseUrl, {
    // No pings: grpc-go answers more than one ping per 5 minutes with GOAWAY.
    pingIntervalMs: Number.POSITIVE_INFINITY,
    pingIdleConnection: false,
    // Never close an idle connection: the daemon would close its sessions.
    idleConnectionTimeoutMs: MAX_TIMER_MS,
  });
  const inner = createNodeHttpClient({ httpVersion: "2", sessionProvider: () => sessions });
  const transport = createTransport({
    baseUrl,
    httpClient: modeldHttpClient(inner, instanceId),
    useBinaryFormat: false,
    jsonOptions: { ignoreUnknownFields: true },
    readMaxBytes: MAX_MESSAGE_BYTES,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    compressMinBytes: Number.MAX_SAFE_INTEGER,
    acceptCompression: [],
    sendCompression: null,
    interceptors: [],
  });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    sessions.abort();
  };
  return {
    endpoint,
    instanceId,
    rpc: createClient(Compute, transport),
    get closed() {
      return closed;
    },
    close,
    [Symbol.dispose]: close,
    [Symbol.asyncDispose]: () => Promise.resolve(close()),
  };
}

const methodInputs: ReadonlyMap<string, DescMessage> = new Map(
  Compute.methods.map((m) => [`/${Compute.typeName}/${m.name}`, m.input]),
);

/** Wraps Connect's HTTP client to speak modeld's dialect of gRPC. */
function modeldHttpClient(inner: UniversalClientFn, instanceId: string): UniversalClientFn {
  return async (req: UniversalClientRequest) => {
    const path = new URL(req.url).pathname;
    req.header.set("content-type", CONTENT_TYPE);
    if (instanceId !== "" && !path.endsWith("/Health")) req.header.set(FENCE_HEADER, instanceId);
    const input = methodInputs.get(path);
    if (input && req.body) {
      req.body = rewriteEnvelopes(req.body, (json) => toGoJson(input, JSON.parse(json)));
    }
    const res = await inner(req);
    const contentType = res.header.get("content-type") ?? "";
    if (contentType.startsWith(CONTENT_TYPE)) {
      res.header.set("content-type", CONNECT_JSON_CONTENT_TYPE);
    }
    // Go writes 64-bit integers bare; quote the ones JSON.parse would round.
    res.body = rewriteEnvelopes(res.body, quoteUnsafeIntegers);
    return res;
  };
}

/**
 * Rewrites the JSON text of each length-prefixed message of a gRPC body.
 * Envelopes may span or share chunks; trailing partial bytes pass through.
 */
async function* rewriteEnvelopes(
  body: AsyncIterable<Uint8Array>,
  rewrite: (json: string) => string,
): AsyncIterable<Uint8Array> {
  let pending: Uint8Array = new Uint8Array(0);
  for await (const chunk of body) {
    pending = concat(pending, chunk);
    while (pending.length >= 5) {
      const length = new DataView(pending.buffer, pending.byteOffset + 1, 4).getUint32(0);
      if (pending.length < 5 + length) break;
      const flags = pending[0];
      const message = pending.subarray(0, 5 + length);
      pending = pending.slice(5 + length);
      if (flags !== 0) {
        yield message; // compressed: modeld never compresses, so leave it to Connect to refuse
        continue;
      }
      yield envelope(flags, utf8Encoder.encode(rewrite(utf8Decoder.decode(message.subarray(5)))));
    }
  }
  if (pending.length > 0) yield pending;
}

function envelope(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
