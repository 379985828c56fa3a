/**
 * Endpoints: the `host:port` a lease's `meta.endpoint` names (Go's
 * `net.Listener.Addr().String()`) or a caller passes to `client.endpoint()`,
 * parsed the way Go's `net.SplitHostPort` and `net.Dial` read them, before
 * anything is dialled or any permission is asked for.
 *
 * - What Go cannot dial is refused with {@linkcode InvalidEndpointError}:
 *   `[::1` (no `]`), `127.0.0.1:1 ` (a space in the port), `user@127.0.0.1:1`,
 *   `http://…` and `a:1@b:2` (too many colons), ports outside 1–65535. The
 *   client and `probe()` report such a lease as unreachable, as Go's probe does.
 * - Legacy IPv4 forms (`0x7f000001`, `127.1`, `2130706433`, `0177.0.0.1`) are
 *   no IP literals to Go (`net.ParseIP` refuses them and they are no DNS names
 *   either), while a URL parser silently reads them as `127.0.0.1`. They are
 *   refused too, with the dotted form to write instead, so the client never
 *   dials an address other than the one written, nor asks for an `--allow-net`
 *   grant that does not match it.
 * - A wildcard host (`0.0.0.0`, `[::]`, or an empty host as in `:40517`) is
 *   what a daemon listening on every interface writes. For a client on the
 *   same machine it means "this host": Go's `net.Dial` dials the local system
 *   for it. This client dials `127.0.0.1` for all three, also for `[::]`: a
 *   Go listener on `[::]` is dual-stack (it accepts IPv4 on 127.0.0.1), and
 *   `--allow-net=127.0.0.1`, the grant every other local endpoint needs,
 *   suffices. (A listener made IPv6-only, e.g. with `net.ipv6.bindv6only=1`,
 *   cannot be reached this way; have it write `[::1]:PORT`.)
 *
 * @example
 * ```ts
 * import { parseEndpoint } from "./endpoint.ts";
 *
 * const ep = parseEndpoint("[::]:40517");
 * console.assert(ep.wildcard && ep.url === "http://127.0.0.1:40517");
 * ```
 *
 * @module
 */

import { InvalidEndpointError } from "./errors.ts";

/** A parsed endpoint, ready to dial. */
export interface Endpoint {
  /** The endpoint as written. */
  readonly text: string;
  /** The host as written, without brackets ("" for `:PORT`). */
  readonly host: string;
  /** The TCP port, 1 to 65535. */
  readonly port: number;
  /** Whether the host is a wildcard (`0.0.0.0`, `::`, ""): dialled on loopback. */
  readonly wildcard: boolean;
  /** The host to dial and to grant with `--allow-net`: IPv6 in brackets, normalised. */
  readonly dialHost: string;
  /** `dialHost:port`, what `Deno.permissions` is asked about. */
  readonly authority: string;
  /** `http://dialHost:port`: the endpoint as a URL, which a URL parser leaves as it is. */
  readonly url: string;
}

/** Loopback, dialled for wildcard endpoints (see the module doc). */
const WILDCARD_DIAL_HOST = "127.0.0.1";
const MAX_ENDPOINT_CHARS = 300;
const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/**
 * Parses an endpoint as Go's `net.SplitHostPort` and `net.Dial` would, and
 * says how this client dials it.
 *
 * @param text `host:port`, `[ipv6]:port`, or `:port`.
 * @returns The parsed endpoint.
 * @throws {InvalidEndpointError} When Go could not dial it, or it is a legacy
 *   IPv4 form a URL parser would silently rewrite.
 *
 * @example
 * ```ts
 * import { parseEndpoint } from "./endpoint.ts";
 * import { InvalidEndpointError } from "./errors.ts";
 *
 * console.assert(parseEndpoint("127.0.0.1:40517").authority === "127.0.0.1:40517");
 * console.assert(parseEndpoint("[0:0::1]:9").dialHost === "[::1]");
 * try {
 *   parseEndpoint("0x7f000001:80");
 * } catch (err) {
 *   console.assert(err instanceof InvalidEndpointError && err.message.includes("127.0.0.1"));
 * }
 * ```
 */
export function parseEndpoint(text: string): Endpoint {
  const bad = (reason: string) => new InvalidEndpointError(text, reason);
  if (text.length > MAX_ENDPOINT_CHARS) {
    throw bad(`it is ${text.length} characters long; a host:port is at most ${MAX_ENDPOINT_CHARS}`);
  }
  // deno-lint-ignore no-control-regex
  if (/[\s\u0000-\u001f\u007f-\u009f]/.test(text)) {
    throw bad("it contains spaces or control characters");
  }
  if (text === "") throw bad("it is empty");

  // net.SplitHostPort
  let host: string;
  let portText: string;
  let bracketed = false;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) throw bad("missing ']' in address");
    if (text[close + 1] !== ":") {
      throw bad(
        close + 1 === text.length ? "missing port in address" : "unexpected text after ']'",
      );
    }
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    bracketed = true;
    if (host.includes("[") || portText.includes("[") || portText.includes("]")) {
      throw bad("unexpected '[' or ']' in address");
    }
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) throw bad("missing port in address");
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) {
      throw bad("too many colons in address (no scheme, no IPv6 without [ ])");
    }
    if (host.includes("[") || host.includes("]") || portText.includes("]")) {
      throw bad("unexpected '[' or ']' in address");
    }
  }

  // The port: decimal, 1 to 65535 (Go also looks up service names; modeld never writes one).
  if (!/^\d{1,5}$/.test(portText)) throw bad(`invalid port ${JSON.stringify(portText)}`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw bad(`port ${port} is out of range (1 to 65535)`);

  // The host: an IPv4 literal, an IPv6 literal in brackets, a DNS name, or a wildcard.
  let dialHost: string;
  let wildcard = false;
  if (bracketed) {
    // Go's SplitHostPort also takes "[127.0.0.1]:80" and "[name]:80"; so does this.
    const normal = ipv6Normal(host);
    if (normal !== undefined) {
      wildcard = normal === "[::]" || normal === "[::ffff:0:0]";
      dialHost = wildcard ? WILDCARD_DIAL_HOST : normal;
    } else if (host === "0.0.0.0") {
      wildcard = true;
      dialHost = WILDCARD_DIAL_HOST;
    } else {
      dialHost = IPV4.test(host) ? host : dnsName(host, bad);
    }
  } else if (host === "" || host === "0.0.0.0") {
    wildcard = true;
    dialHost = WILDCARD_DIAL_HOST;
  } else if (IPV4.test(host)) {
    dialHost = host;
  } else {
    dialHost = dnsName(host, bad);
  }
  const authority = `${dialHost}:${port}`;
  return { text, host, port, wildcard, dialHost, authority, url: `http://${authority}` };
}

/** `[normalised]` for an IPv6 literal (no zone), else undefined. */
function ipv6Normal(host: string): string | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(host) || !host.includes(":")) return undefined;
  try {
    return new URL(`http://[${host}]/`).hostname;
  } catch {
    return undefined;
  }
}

/** A host name Go would look up, checked like Go's `isDomainName`. */
function dnsName(host: string, bad: (reason: string) => Error): string {
  const labels = host.endsWith(".") ? host.slice(0, -1).split(".") : host.split(".");
  if (host.length > 254 || !labels.every((l) => LABEL.test(l))) {
    throw bad(`${host} is neither an IP address nor a host name`);
  }
  // All digits (127.1, 2130706433) is no DNS name to Go; hex or octal forms
  // (0x7f000001, 0177.0.0.1) would be looked up as one. A URL parser reads
  // every one of them as an IPv4 address; refuse them and say what to write.
  let asUrl: string | undefined;
  try {
    asUrl = new URL(`http://${host}/`).hostname;
  } catch {
    asUrl = undefined;
  }
  if (asUrl !== undefined && IPV4.test(asUrl)) {
    throw bad(
      `${host} is not an IP address Go can dial (a legacy numeric IPv4 form); write ${asUrl}`,
    );
  }
  if (/^[\d.]+$/.test(host)) throw bad(`${host} is neither an IP address nor a host name`);
  // A name whose last label is a number (f.0.0.0) cannot be carried in a URL
  // and resolves nowhere in Go; any other rewrite by the URL parser would dial
  // a host other than the one written.
  if (asUrl !== host.toLowerCase()) {
    throw bad(`${host} is neither an IP address nor a host name that can be dialled`);
  }
  return asUrl;
}
