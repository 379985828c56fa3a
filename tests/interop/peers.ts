/**
 * Starts and stops the Go processes of the interop suites: the scripted peer
 * (`bin/peer`, the real contenox/runtime v0.36.0 transport, memory service and
 * slot) and the real daemon (`bin/modeld-<version>`, "none" backend), both
 * built by `build.sh`.
 *
 * Each process gets piped stdout/stderr that are drained until it exits, so
 * the leak sanitizers stay quiet; `await using` stops it (SIGTERM, then
 * SIGKILL after a grace period) and removes a data root it created.
 *
 * @example
 * ```ts ignore
 * await using peer = await startPeer({ mode: "slot", log: true });
 * await using client = new ModeldClient({ dataRoot: peer.dataRoot });
 * await client.loadModel({ name: "a", type: "llama", path: "/m/a.gguf" });
 * console.log((await peer.log()).filter((e) => e.layer === "wire").length);
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { readLease } from "../../mod.ts";

/** The contenox/runtime version the peer and the real daemon are built from. */
export const PEER_VERSION = "v0.36.0";

/** The directory `build.sh` writes the Go binaries to. */
export const BIN_DIR = new URL("./bin/", import.meta.url).pathname;

/** The path of a binary (or marker file) in {@linkcode BIN_DIR}. */
export function binPath(name: string): string {
  return join(BIN_DIR, name);
}

const STARTUP_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 12_000;

/** One line of the peer's `--log` file (see go/cmd/peer/logging.go). */
export interface PeerLogEntry {
  time: string;
  layer: "wire" | "svc" | "script";
  method?: string;
  event?: string;
  model?: string;
  /** The Go value, re-marshalled by Go; integers of 16+ digits are kept as digit strings. */
  req?: unknown;
  /** The exact JSON text of the request message as received. */
  raw?: string;
  raw_len?: number;
  raw_sha256?: string;
  req_truncated?: boolean;
  code?: number;
  message?: string;
  n?: number;
}

/** A temporary data root, removed on dispose. */
export interface TempDir extends AsyncDisposable {
  /** The absolute directory path. */
  readonly path: string;
}

/**
 * Creates a data root under `$TMPDIR` (the task points it at `.cache/tmp`).
 *
 * @returns The directory; `await using` removes it.
 */
export async function tempDataRoot(): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix: "interop-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** Options common to the peer and the real daemon. */
export interface GoProcessOptions {
  /** The data root; default a new temporary directory, removed when the process is disposed. */
  dataRoot?: string;
  /** Lease TTL, Go duration syntax (default "30s"). */
  ttl?: string;
  /** Slot idle reaper TTL (default "0": off). */
  idleTtl?: string;
  /** Listen address (default "127.0.0.1:0"); pass an old endpoint to reuse its port. */
  listen?: string;
  /** Extra environment variables (e.g. `TZ`, which sets the zone of the lease's times). */
  env?: Record<string, string>;
}

/** Options of {@linkcode startPeer}. */
export interface PeerOptions extends GoProcessOptions {
  /** `memory` (bare MemoryService) or `slot` (modeld/slot over it). Default `memory`. */
  mode?: "memory" | "slot";
  /** Write the JSON-lines request log (read it with {@linkcode GoProcess.log}). Default true. */
  log?: boolean;
}

/** Options of {@linkcode startModeld}. */
export interface ModeldOptions extends GoProcessOptions {
  /** Which built daemon: `bin/modeld-<version>`. Default {@linkcode PEER_VERSION}. */
  version?: string;
}

let logSeq = 0;

/** A running Go process that owns a data root's lease. */
export class GoProcess implements AsyncDisposable {
  /** For messages: `peer v0.36.0 slot`, `modeld v0.36.0`. */
  readonly label: string;
  /** The data root whose lease the process holds. */
  readonly dataRoot: string;
  /** The `host:port` from the ready line (also the lease's `meta.endpoint`). */
  readonly endpoint: string;
  /** The lease instance id (the owner fence). */
  readonly instanceId: string;
  /** The process id. */
  readonly pid: number;
  /** The request log, when enabled. */
  readonly logPath: string | undefined;
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[];
  readonly #stderr: { text: string };
  readonly #drained: Promise<void>;
  readonly #ownsDataRoot: boolean;
  #status: Deno.CommandStatus | undefined;

  /** Use {@linkcode startPeer} or {@linkcode startModeld}. */
  constructor(init: {
    label: string;
    dataRoot: string;
    endpoint: string;
    instanceId: string;
    logPath: string | undefined;
    child: Deno.ChildProcess;
    lines: string[];
    stderr: { text: string };
    drained: Promise<void>;
    ownsDataRoot: boolean;
  }) {
    this.label = init.label;
    this.dataRoot = init.dataRoot;
    this.endpoint = init.endpoint;
    this.instanceId = init.instanceId;
    this.logPath = init.logPath;
    this.#child = init.child;
    this.pid = init.child.pid;
    this.#lines = init.lines;
    this.#stderr = init.stderr;
    this.#drained = init.drained;
    this.#ownsDataRoot = init.ownsDataRoot;
  }

  /** Every stdout line so far. */
  get stdout(): readonly string[] {
    return this.#lines;
  }

  /** Everything written to stderr so far. */
  get stderr(): string {
    return this.#stderr.text;
  }

  /** Whether the process was stopped with {@linkcode GoProcess.terminate} or {@linkcode GoProcess.kill}. */
  get exited(): boolean {
    return this.#status !== undefined;
  }

  /**
   * Sends SIGTERM (graceful stop: the lease is released) and waits for the exit.
   *
   * @returns The exit status.
   */
  terminate(): Promise<Deno.CommandStatus> {
    return this.#signalAndWait("SIGTERM");
  }

  /**
   * Sends SIGKILL (a crash: the lease stays behind until its TTL lapses) and waits.
   *
   * @returns The exit status.
   */
  kill(): Promise<Deno.CommandStatus> {
    return this.#signalAndWait("SIGKILL");
  }

  async #signalAndWait(signal: Deno.Signal): Promise<Deno.CommandStatus> {
    if (this.#status) return this.#status;
    try {
      this.#child.kill(signal);
    } catch {
      // already exited
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const status = await Promise.race([
      this.#child.status,
      new Promise<undefined>((resolve) =>
        timer = setTimeout(() => resolve(undefined), STOP_GRACE_MS)
      ),
    ]);
    clearTimeout(timer);
    if (status === undefined) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
    }
    this.#status = await this.#child.status;
    await this.#drained;
    return this.#status;
  }

  /**
   * The request log, parsed. Integers of 16+ digits are kept as strings in
   * `req` (JSON.parse would round them).
   *
   * @returns Every entry written so far.
   */
  async log(): Promise<PeerLogEntry[]> {
    if (!this.logPath) throw new Error(`${this.label} was started without --log`);
    let text: string;
    try {
      text = await Deno.readTextFile(this.logPath);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
    return text.split("\n").filter((l) => l !== "").map(parseLogLine);
  }

  /**
   * Waits until a log entry matches.
   *
   * @param match The predicate.
   * @param timeoutMs How long to wait.
   * @returns The first matching entry and when it was seen (ms since the wait began).
   */
  async waitForLog(
    match: (e: PeerLogEntry) => boolean,
    timeoutMs = 5_000,
  ): Promise<{ entry: PeerLogEntry; afterMs: number }> {
    const start = performance.now();
    while (true) {
      const entry = (await this.log()).find(match);
      if (entry) return { entry, afterMs: performance.now() - start };
      if (performance.now() - start > timeoutMs) {
        throw new Error(`${this.label}: no matching log entry within ${timeoutMs} ms`);
      }
      await delay(20);
    }
  }

  /** SIGTERM (SIGKILL after a grace period), drain the pipes, remove an owned data root. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.terminate();
    if (this.#ownsDataRoot) await Deno.remove(this.dataRoot, { recursive: true }).catch(() => {});
  }
}

/** Parses a log line, quoting integers too large for a double first. */
export function parseLogLine(line: string): PeerLogEntry {
  return parseExact(line) as PeerLogEntry;
}

/**
 * `JSON.parse` that keeps integers of 16+ digits exact, as digit strings.
 *
 * @param json JSON text.
 * @returns The parsed value.
 */
export function parseExact(json: string): unknown {
  return JSON.parse(quoteBigInts(json));
}

/**
 * Quotes bare JSON integers of 16 or more digits (outside strings) so
 * JSON.parse keeps them exact.
 */
export function quoteBigInts(json: string): string {
  let out = "";
  let i = 0;
  while (i < json.length) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (j < json.length && json[j] !== '"') j += json[j] === "\\" ? 2 : 1;
      out += json.slice(i, j + 1);
      i = j + 1;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i + 1;
      while (j < json.length && /[0-9.eE+-]/.test(json[j])) j++;
      const num = json.slice(i, j);
      out += /^-?\d{16,}$/.test(num) ? `"${num}"` : num;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/**
 * Starts the scripted Go peer and waits for its ready line and lease.
 *
 * @param options Mode, data root, TTLs, listen address, log.
 * @returns The running peer.
 */
export function startPeer(options: PeerOptions = {}): Promise<GoProcess> {
  const mode = options.mode ?? "memory";
  return spawnGo({
    label: `peer ${PEER_VERSION} ${mode}`,
    binary: binPath("peer"),
    args: (dataRoot, logPath) => {
      const args = [
        "--data-root",
        dataRoot,
        "--mode",
        mode,
        "--ttl",
        options.ttl ?? "30s",
        "--idle-ttl",
        options.idleTtl ?? "0",
        "--listen",
        options.listen ?? "127.0.0.1:0",
      ];
      if (logPath) args.push("--log", logPath);
      return args;
    },
    log: options.log ?? true,
    dataRoot: options.dataRoot,
    env: options.env,
    ready: /^peer ready endpoint=(\S+) instance=(\S+) mode=/,
  });
}

/**
 * Starts the real modeld (`serve`) and waits for its start line and lease.
 *
 * @param options Version, data root, TTLs, listen address.
 * @returns The running daemon.
 */
export function startModeld(options: ModeldOptions = {}): Promise<GoProcess> {
  const version = options.version ?? PEER_VERSION;
  return spawnGo({
    label: `modeld ${version}`,
    binary: binPath(`modeld-${version}`),
    args: (dataRoot) => [
      "serve",
      "--data-root",
      dataRoot,
      "--listen",
      options.listen ?? "127.0.0.1:0",
      "--ttl",
      options.ttl ?? "30s",
      // The idle reaper (and its flag) arrived in v0.32.6.
      ...(/^v0\.32\.[0-5]$/.test(version) ? [] : ["--idle-ttl", options.idleTtl ?? "0"]),
    ],
    log: false,
    dataRoot: options.dataRoot,
    env: options.env,
    // v0.36.0: "modeld owner started: instance=… pid=… data_root=… endpoint=… backend=…"
    // v0.32.3: "modeld owner started: instance=… pid=… endpoint=… ttl=…"
    ready: /^modeld owner started: instance=(\S+) pid=\d+ (?:data_root=\S+ )?endpoint=(\S+)/,
    readyOrder: "instance-endpoint",
  });
}

/**
 * Reads a child's stdout line by line and collects its stderr, until both close.
 *
 * @param child A child spawned with piped stdout and stderr.
 * @param onLine Called with each stdout line (a last unterminated line included).
 * @param onEnd Called once stdout has closed.
 * @returns The stderr text so far (a live box) and a promise for both streams' end.
 */
export function drainOutput(
  child: Deno.ChildProcess,
  onLine: (line: string) => void,
  onEnd: () => void,
): { stderr: { text: string }; drained: Promise<void> } {
  const stderr = { text: "" };
  const drained = Promise.all([
    (async () => {
      let pending = "";
      for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
        pending += text;
        let nl;
        while ((nl = pending.indexOf("\n")) >= 0) {
          onLine(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
        }
      }
      if (pending) onLine(pending);
      onEnd();
    })(),
    (async () => {
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
        stderr.text += text;
      }
    })(),
  ]).then(() => {});
  return { stderr, drained };
}

interface SpawnSpec {
  label: string;
  binary: string;
  args: (dataRoot: string, logPath: string | undefined) => string[];
  log: boolean;
  dataRoot: string | undefined;
  env: Record<string, string> | undefined;
  ready: RegExp;
  readyOrder?: "endpoint-instance" | "instance-endpoint";
}

async function spawnGo(spec: SpawnSpec): Promise<GoProcess> {
  const ownsDataRoot = spec.dataRoot === undefined;
  const dataRoot = spec.dataRoot ?? await Deno.makeTempDir({ prefix: "interop-" });
  const logPath = spec.log ? join(dataRoot, `peer-${++logSeq}.log`) : undefined;
  const child = new Deno.Command(spec.binary, {
    args: spec.args(dataRoot, logPath),
    env: spec.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let onLine: (() => void) | undefined;
  const { stderr, drained } = drainOutput(child, (line) => {
    lines.push(line);
    onLine?.();
  }, () => onLine?.());

  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    onLine?.();
    return s;
  });
  const fail = async (why: string): Promise<never> => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
    await status;
    await drained;
    if (ownsDataRoot) await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
    throw new Error(
      `${spec.label} did not start: ${why}\nstdout:\n${lines.join("\n")}\nstderr:\n${stderr.text}`,
    );
  };

  // Wait for the ready line.
  let match: RegExpMatchArray | undefined;
  const deadline = performance.now() + STARTUP_TIMEOUT_MS;
  while (!match) {
    match = lines.map((l) => l.match(spec.ready)).find((m) => m) ?? undefined;
    if (match) break;
    if (exited) return await fail("it exited before its ready line");
    const left = deadline - performance.now();
    if (left <= 0) return await fail(`no ready line within ${STARTUP_TIMEOUT_MS} ms`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      onLine = resolve;
      timer = setTimeout(resolve, Math.min(left, 100));
    });
    clearTimeout(timer);
    onLine = undefined;
  }
  const [endpoint, instanceId] = spec.readyOrder === "instance-endpoint"
    ? [match[2], match[1]]
    : [match[1], match[2]];

  // The lease must name this process before a client can find it.
  while (true) {
    const lease = await readLease(dataRoot).catch(() => undefined);
    if (lease?.instanceId === instanceId && lease.endpoint === endpoint) break;
    if (exited) return await fail("it exited before its lease appeared");
    if (performance.now() > deadline) return await fail("its lease did not appear");
    await delay(10);
  }
  return new GoProcess({
    label: spec.label,
    dataRoot,
    endpoint,
    instanceId,
    logPath,
    child,
    lines,
    stderr,
    drained,
    ownsDataRoot,
  });
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` until it returns a value other than `undefined`.
 *
 * @param check The condition; return undefined to keep waiting.
 * @param timeoutMs How long to wait.
 * @param what For the timeout message.
 * @returns The value and the time it took.
 */
export async function waitFor<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
): Promise<{ value: T; afterMs: number }> {
  const start = performance.now();
  while (true) {
    const value = await check();
    if (value !== undefined) return { value, afterMs: performance.now() - start };
    if (performance.now() - start > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await delay(20);
  }
}
