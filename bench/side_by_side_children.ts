/**
 * The child processes of bench/side_by_side.ts: each runs one TypeScript
 * client workload in a fresh `deno run` (granted what a user would grant),
 * so its CPU time and memory are the client's alone, not the orchestrator's.
 *
 * Protocol: the child writes JSON lines on stdout. A line with
 * `"event":"ready"` means "read my /proc now", and the child waits for a line
 * on stdin before going on; the last line has `"event":"done"`, after which
 * the child waits for stdin to close (so the parent can read its VmHWM
 * through `gobench --vmhwm PID`: Deno refuses /proc reads without -A).
 *
 * @module
 */

import { ModeldClient } from "../mod.ts";
import {
  type Cpu,
  cpuNow,
  cpuSince,
  MODEL,
  type RoundResult,
  type RoundSizes,
  TsWorkloads,
  turn,
} from "./workloads.ts";

/** What the round child reports. */
export interface RoundChildResult extends RoundResult {
  event: "done";
  /** CPU of the whole timed pass. */
  passCpu: Cpu;
  /** CPU of the whole process so far: start-up, warm-up and the pass. */
  processCpu: Cpu;
  /** `Deno.memoryUsage().rss` right after the first Health call, bytes. */
  postStartRss: number;
}

/** What the push child reports when it is done. */
export interface PushChildResult {
  event: "done";
  bytes: number;
  /** Wall time of `pushModelFile` (digest pass included). */
  seconds: number;
  cpu: Cpu;
  alreadyPresent: boolean;
  bytesWritten: number;
  /** The largest values sampled every 10 ms during the push, bytes. */
  maxRss: number;
  maxHeapUsed: number;
  maxExternal: number;
}

/** One point of the RSS series. */
export interface SeriesPoint {
  calls: number;
  /** After a forced GC, bytes. */
  rss: number;
  heapUsed: number;
  /** V8's committed heap: what the GC keeps mapped, used or not. */
  heapTotal: number;
  external: number;
}

/** What the series child reports. */
export interface SeriesChildResult {
  event: "done";
  health: SeriesPoint[];
  /** Turns counted as calls: five RPCs each. */
  turn: SeriesPoint[];
}

/** The RPCs in one turn (open, prefix, suffix, decode, close). */
export const CALLS_PER_TURN = 5;

let stdinReader: ReadableStreamDefaultReader<Uint8Array> | undefined;
function stdin(): ReadableStreamDefaultReader<Uint8Array> {
  return stdinReader ??= Deno.stdin.readable.getReader();
}

function emit(value: object): void {
  console.log(JSON.stringify(value));
}

/** Waits for the parent's go-ahead line. */
async function waitForGo(): Promise<void> {
  if ((await stdin().read()).done) throw new Error("the parent closed stdin");
}

/** Waits until the parent closes stdin. */
async function waitForEof(): Promise<void> {
  while (!(await stdin().read()).done) { /* ignore */ }
}

/**
 * `--child round`: untimed warm-up (every workload a few times, then
 * `warmPasses` whole passes, so V8 has compiled the hot paths), then one
 * timed pass of every workload.
 */
async function roundChild(
  p: { dataRoot: string; sizes: RoundSizes; skipPush: boolean; warmPasses: number },
) {
  await using ts = new TsWorkloads(p.dataRoot, { skipPush: p.skipPush });
  await ts.client.health();
  const postStartRss = Deno.memoryUsage().rss;
  await ts.warmUp();
  for (let i = 0; i < p.warmPasses; i++) await ts.round(p.sizes);
  const start = cpuNow();
  const round = await ts.round(p.sizes);
  const result: RoundChildResult = {
    event: "done",
    ...round,
    passCpu: cpuSince(start),
    processCpu: cpuNow(),
    postStartRss,
  };
  emit(result);
  await waitForEof();
}

/** `--child push`: one point of the push memory curve. */
async function pushChild(p: { dataRoot: string; file: string; name: string }) {
  await using client = new ModeldClient({ dataRoot: p.dataRoot });
  await client.health();
  emit({ event: "ready" });
  await waitForGo();
  let maxRss = 0, maxHeapUsed = 0, maxExternal = 0;
  const sample = () => {
    const m = Deno.memoryUsage();
    maxRss = Math.max(maxRss, m.rss);
    maxHeapUsed = Math.max(maxHeapUsed, m.heapUsed);
    maxExternal = Math.max(maxExternal, m.external);
  };
  const sampler = setInterval(sample, 10);
  const cpuStart = cpuNow();
  const start = performance.now();
  const res = await client.pushModelFile(p.file, { name: p.name, type: "llama", format: "file" });
  const seconds = (performance.now() - start) / 1e3;
  const cpu = cpuSince(cpuStart);
  clearInterval(sampler);
  sample();
  await client.removeModel(p.name);
  const result: PushChildResult = {
    event: "done",
    bytes: (await Deno.stat(p.file)).size,
    seconds,
    cpu,
    alreadyPresent: res.alreadyPresent,
    bytesWritten: Number(res.bytesWritten),
    maxRss,
    maxHeapUsed,
    maxExternal,
  };
  emit(result);
  await waitForEof();
}

/** Where the series reads memory, as fractions of its calls. */
export const SERIES_POINTS = [0, 0.1, 0.25, 0.5, 0.75, 1];

/**
 * `--child series` (run with `--v8-flags=--expose-gc`): memory at
 * {@linkcode SERIES_POINTS} of `calls` Health calls, then the same for warm
 * turns (`calls / 5` turns of five RPCs), each point after a forced GC.
 */
async function seriesChild(p: { dataRoot: string; calls: number }) {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run the series child with --v8-flags=--expose-gc");
  const point = (calls: number): SeriesPoint => {
    gc();
    const m = Deno.memoryUsage();
    return {
      calls,
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
    };
  };
  const run = async (total: number, perOp: number, op: () => Promise<unknown>) => {
    const points = [];
    let done = 0;
    for (const at of SERIES_POINTS.map((f) => Math.floor(f * total))) {
      for (; done < at; done++) await op();
      points.push(point(done * perOp));
    }
    return points;
  };
  await using client = new ModeldClient({ dataRoot: p.dataRoot });
  await client.health();
  await client.unloadModel();
  // One untimed turn: the slot loads the model and keeps the session warm.
  await (await client.openSession(MODEL)).close();
  const health = await run(p.calls, 1, () => client.health());
  const turns = await run(Math.floor(p.calls / CALLS_PER_TURN), CALLS_PER_TURN, () => turn(client));
  const result: SeriesChildResult = { event: "done", health, turn: turns };
  emit(result);
  await waitForEof();
}

/** The child kinds and their parameters. */
export type ChildParams =
  | { kind: "round"; dataRoot: string; sizes: RoundSizes; skipPush: boolean; warmPasses: number }
  | { kind: "push"; dataRoot: string; file: string; name: string }
  | { kind: "series"; dataRoot: string; calls: number };

/** Runs the child that `params` (the JSON after `--child`) names. */
export async function runChild(params: ChildParams): Promise<void> {
  switch (params.kind) {
    case "round":
      return await roundChild(params);
    case "push":
      return await pushChild(params);
    case "series":
      return await seriesChild(params);
  }
}
