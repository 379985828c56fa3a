/**
 * What the benchmarks share: starting the Go peer (tests/interop/bin/peer,
 * built by tests/interop/build.sh) and the workloads, run through the public
 * API of `mod.ts`. The constants match tests/interop/go/cmd/gobench, so the
 * TypeScript and Go clients send the same requests.
 *
 * @module
 */

import process from "node:process";
import { ModeldClient, type ModelRef, type PushModelOptions } from "../mod.ts";

/** The peer binary, relative to the repository root (the bench's working directory). */
export const PEER_BIN = "tests/interop/bin/peer";
/** The Go client benchmark binary. */
export const GOBENCH_BIN = "tests/interop/bin/gobench";

/** The model every session opens; the slot needs a non-empty path. */
export const MODEL: ModelRef = { name: "bench-model", type: "llama", path: "/bench/model.gguf" };
export const TURN_PREFIX = "You are a benchmark. Answer in one word.";
export const TURN_SUFFIX = "What is 2+2?";
export const TURN_TOKENS = 32;
export const DECODE_TOKENS = 512;
export const PREFIX_UNIT = "Grüße, 世界! Ünïcödé ✓ 🙂 ";
export const PREFIX_BYTES = 64 * 1024;
export const PUSH_BYTES = 16 * 1024 * 1024;
export const PUSH_NAME = "bench-push";

/** The 64 KiB non-ASCII prefix: {@linkcode PREFIX_UNIT} as often as it fits (Go: same). */
export function nonAsciiPrefix(): string {
  const unitBytes = new TextEncoder().encode(PREFIX_UNIT).length;
  return PREFIX_UNIT.repeat(Math.floor(PREFIX_BYTES / unitBytes));
}

/** 16 MiB of a fixed xorshift32 pattern (seed 1), byte for byte what gobench pushes. */
export function pushPayload(): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(PUSH_BYTES);
  let x = 1;
  for (let i = 0; i < b.length; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Lowercase hex SHA-256 (WebCrypto), so the timed push need not hash. */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A running peer; `stop()` (or `stopSync()` from an unload handler) ends it. */
export interface BenchPeer extends AsyncDisposable {
  readonly dataRoot: string;
  readonly endpoint: string;
  readonly instanceId: string;
  readonly pid: number;
  /** SIGTERM, wait for the exit, remove the data root. */
  stop(): Promise<void>;
  /**
   * SIGKILL and remove the data root, without waiting: for `unload` handlers,
   * which cannot await. (SIGTERM would have the peer release a lease in a
   * directory that is already gone, and complain.)
   */
  stopSync(): void;
}

/**
 * Starts the peer in a new temporary data root (under `$TMPDIR`).
 *
 * @param mode `memory` (bare MemoryService) or `slot` (what modeld serves).
 * @returns The running peer.
 */
export async function startBenchPeer(mode: "memory" | "slot"): Promise<BenchPeer> {
  const dataRoot = await Deno.makeTempDir({ prefix: `bench-${mode}-` });
  const child = new Deno.Command(PEER_BIN, {
    args: ["--data-root", dataRoot, "--mode", mode, "--ttl", "30s", "--idle-ttl", "0"],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).values();
  let buffered = "";
  let ready: RegExpMatchArray | null = null;
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  while (!ready) {
    const next = await lines.next();
    if (next.done) break;
    buffered += next.value;
    ready = buffered.match(/^peer ready endpoint=(\S+) instance=(\S+) mode=/m);
  }
  clearTimeout(timer);
  if (!ready) {
    await child.status;
    await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
    throw new Error(`peer (${mode}) exited before it was ready: ${buffered}`);
  }
  // Keep draining stdout ("peer stopped ...") so the pipe never fills.
  const drained = (async () => {
    while (!(await lines.next()).done) { /* drain */ }
  })();
  let stopped = false;
  const signal = (sig: Deno.Signal) => {
    if (stopped) return false;
    stopped = true;
    try {
      child.kill(sig);
    } catch { /* already gone */ }
    return true;
  };
  const stop = async () => {
    signal("SIGTERM");
    await child.status;
    await drained.catch(() => {});
    await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  };
  return {
    dataRoot,
    endpoint: ready[1],
    instanceId: ready[2],
    pid: child.pid,
    stop,
    stopSync() {
      if (!signal("SIGKILL")) return;
      try {
        Deno.removeSync(dataRoot, { recursive: true });
      } catch { /* best effort: the dir is in TMPDIR */ }
    },
    [Symbol.asyncDispose]: stop,
  };
}

/** Per-round values, keyed by workload. */
export type Rounds = Record<Workload, number[]>;
/** The workloads of the side-by-side comparison. */
export type Workload = "health" | "prefixWarm" | "turn" | "decode" | "prefix64k" | "push16m";
/** The workloads in the order a round runs them (gobench: the same). */
export const WORKLOADS: readonly Workload[] = [
  "health",
  "prefixWarm",
  "turn",
  "decode",
  "prefix64k",
  "push16m",
];
/** The unit of each workload's value. */
export const UNITS: Record<Workload, string> = {
  health: "us/call",
  prefixWarm: "us/call",
  turn: "us/turn",
  decode: "tokens/s",
  prefix64k: "us/call",
  push16m: "MiB/s",
};
/** Whether a larger value is better. */
export const HIGHER_IS_BETTER: Record<Workload, boolean> = {
  health: false,
  prefixWarm: false,
  turn: false,
  decode: true,
  prefix64k: false,
  push16m: true,
};

/** How many operations one round does (gobench takes the same counts as flags). */
export interface RoundSizes {
  health: number;
  warmPrefixes: number;
  turns: number;
  decodes: number;
  prefixes: number;
  pushes: number;
}

/** The default round sizes. */
export const DEFAULT_SIZES: RoundSizes = {
  health: 500,
  warmPrefixes: 500,
  turns: 100,
  decodes: 5,
  prefixes: 50,
  pushes: 3,
};

/** How many operations a workload's value is over, and what one is (for CPU per operation). */
export function operations(w: Workload, sizes: RoundSizes): { count: number; unit: string } {
  switch (w) {
    case "health":
      return { count: sizes.health, unit: "call" };
    case "prefixWarm":
      return { count: sizes.warmPrefixes, unit: "call" };
    case "turn":
      return { count: sizes.turns, unit: "turn" };
    case "decode":
      return { count: sizes.decodes * DECODE_TOKENS, unit: "token" };
    case "prefix64k":
      return { count: sizes.prefixes, unit: "call" };
    case "push16m":
      return { count: sizes.pushes * PUSH_BYTES / 2 ** 20, unit: "MiB" };
  }
}

/** CPU time in µs, every thread of the process, as getrusage reports it. */
export interface Cpu {
  user: number;
  sys: number;
}

/** This process's CPU time so far. */
export function cpuNow(): Cpu {
  const { user, system } = process.cpuUsage();
  return { user, sys: system };
}

/** The CPU time since `start` (a {@linkcode cpuNow} reading). */
export function cpuSince(start: Cpu): Cpu {
  const now = cpuNow();
  return { user: now.user - start.user, sys: now.sys - start.sys };
}

/** One timed pass: each workload's value and the CPU it took. */
export interface RoundResult {
  values: Record<Workload, number>;
  cpu: Record<Workload, Cpu>;
}

/** One session turn: open, warm prefix, suffix, decode 32, close. */
export async function turn(client: ModeldClient): Promise<void> {
  const session = await client.openSession(MODEL);
  try {
    await session.ensurePrefix({ text: TURN_PREFIX });
    await session.prefillSuffix({ text: TURN_SUFFIX });
    const n = await drain(session.decode({ maxTokens: TURN_TOKENS }));
    if (n !== TURN_TOKENS) throw new Error(`turn decoded ${n} chunks, want ${TURN_TOKENS}`);
  } finally {
    await session.close();
  }
}

/** Counts the chunks of a decode. */
export async function drain(stream: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of stream) n++;
  return n;
}

/**
 * The TypeScript half of the side-by-side comparison, against a slot-mode
 * peer; mirrors gobench's workloads and warm-up.
 */
export class TsWorkloads implements AsyncDisposable {
  readonly client: ModeldClient;
  readonly prefix = nonAsciiPrefix();
  readonly payload: Uint8Array<ArrayBuffer> | undefined;
  #pushOptions: PushModelOptions | undefined;

  /**
   * @param dataRoot The peer's data root.
   * @param options `skipPush`: leave the push workload (and its 16 MiB) out.
   */
  constructor(dataRoot: string, options: { skipPush?: boolean } = {}) {
    this.client = new ModeldClient({ dataRoot });
    this.payload = options.skipPush ? undefined : pushPayload();
  }

  /** Connects, empties the slot, and runs every workload once, untimed. */
  async warmUp(): Promise<void> {
    await this.client.health();
    await this.client.unloadModel();
    await this.health(20);
    await this.prefixWarm(20);
    await this.turns(5);
    await this.decode(1);
    await this.prefix64k(2);
    if (!this.payload) return;
    this.#pushOptions = {
      name: PUSH_NAME,
      type: "llama",
      format: "file",
      digest: await sha256Hex(this.payload),
      totalBytes: this.payload.length,
    };
    await this.pushes(1);
  }

  /**
   * Runs every workload once, in {@linkcode WORKLOADS} order; one value and
   * its CPU time per workload (push16m NaN when skipped).
   */
  async round(sizes: RoundSizes): Promise<RoundResult> {
    const steps: Record<Workload, () => Promise<number>> = {
      health: () => this.health(sizes.health),
      prefixWarm: () => this.prefixWarm(sizes.warmPrefixes),
      turn: () => this.turns(sizes.turns),
      decode: () => this.decode(sizes.decodes),
      prefix64k: () => this.prefix64k(sizes.prefixes),
      push16m: () => this.pushes(sizes.pushes),
    };
    const values = {} as Record<Workload, number>;
    const cpu = {} as Record<Workload, Cpu>;
    for (const w of WORKLOADS) {
      if (w === "push16m" && !this.payload) {
        values[w] = NaN;
        cpu[w] = { user: NaN, sys: NaN };
        continue;
      }
      const start = cpuNow();
      values[w] = await steps[w]();
      cpu[w] = cpuSince(start);
    }
    return { values, cpu };
  }

  /** @returns Mean µs per Health call. */
  async health(n: number): Promise<number> {
    const start = performance.now();
    for (let i = 0; i < n; i++) await this.client.health();
    return (performance.now() - start) * 1e3 / n;
  }

  /**
   * EnsurePrefix with the short turn prefix on one open session, after one
   * untimed call: every timed call reuses the whole prefix.
   *
   * @returns Mean µs per call.
   */
  async prefixWarm(n: number): Promise<number> {
    await using session = await this.client.openSession(MODEL);
    await session.ensurePrefix({ text: TURN_PREFIX });
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const status = await session.ensurePrefix({ text: TURN_PREFIX });
      if (status.prefilledTokens !== 0 || status.reusedTokens === 0) {
        throw new Error(`EnsurePrefix was not warm: ${JSON.stringify(status)}`);
      }
    }
    return (performance.now() - start) * 1e3 / n;
  }

  /** @returns Mean µs per turn. */
  async turns(n: number): Promise<number> {
    const start = performance.now();
    for (let i = 0; i < n; i++) await turn(this.client);
    return (performance.now() - start) * 1e3 / n;
  }

  /** @returns Decoded chunks (tokens) per second over `n` decodes of 512. */
  async decode(n: number): Promise<number> {
    await using session = await this.client.openSession(MODEL);
    await session.ensurePrefix({ text: TURN_PREFIX });
    let total = 0;
    const start = performance.now();
    for (let i = 0; i < n; i++) total += await drain(session.decode({ maxTokens: DECODE_TOKENS }));
    return total / ((performance.now() - start) / 1e3);
  }

  /** @returns Mean µs per 64 KiB EnsurePrefix. */
  async prefix64k(n: number): Promise<number> {
    await using session = await this.client.openSession(MODEL);
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const status = await session.ensurePrefix({ text: this.prefix });
      if (status.prefixTokens === 0) throw new Error("EnsurePrefix reported no prefix tokens");
    }
    return (performance.now() - start) * 1e3 / n;
  }

  /** @returns MiB/s over `n` pushes of 16 MiB (digest precomputed, as gobench). */
  async pushes(n: number): Promise<number> {
    const payload = this.payload;
    if (!payload || !this.#pushOptions) throw new Error("no payload, or warmUp() not run");
    const start = performance.now();
    for (let i = 0; i < n; i++) await this.client.pushModel(payload, this.#pushOptions);
    return (n * payload.length / 2 ** 20) / ((performance.now() - start) / 1e3);
  }

  /** Closes the client. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.client[Symbol.asyncDispose]();
  }
}
