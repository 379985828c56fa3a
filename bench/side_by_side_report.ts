/**
 * The Markdown report of bench/side_by_side.ts: what was measured (the types
 * the orchestrator fills) and the tables, each row with its target from
 * issue 10 and whether it is met. The raw data goes at the end as JSON.
 *
 * @module
 */

import type { SeriesChildResult, SeriesPoint } from "./side_by_side_children.ts";
import {
  type Cpu,
  HIGHER_IS_BETTER,
  operations,
  type RoundSizes,
  UNITS,
  type Workload,
  WORKLOADS,
} from "./workloads.ts";

/** One client process of the round comparison (Go: gobench; TS: a round child). */
export interface ClientRound {
  values: Record<Workload, number>;
  cpu: Record<Workload, Cpu>;
  /** CPU of the timed pass (every workload once). */
  passCpu: Cpu;
  /** CPU of the whole process: start-up, warm-up and the pass. */
  processCpu: Cpu;
  /** RSS right after the first Health call, KiB. */
  postStartRssKb: number;
  /** VmHWM at the end, KiB. */
  vmHwmKb: number;
  /** The peer's CPU while this process ran (warm-up included). */
  peerCpu: Cpu;
}

/** One run of `gobench --spawn`: the child's rusage. */
export interface SpawnRun {
  user_us: number;
  sys_us: number;
  wall_us: number;
  maxrss_kb: number;
  exit: number;
}

/** A start-up scenario and its runs. */
export interface StartupResult {
  id:
    | "empty"
    | "importAvailable"
    | "statusNoDaemon"
    | "statusDaemon"
    | "goStatusNoDaemon"
    | "goStatusDaemon";
  label: string;
  command: string;
  runs: SpawnRun[];
}

/** One point of the push memory curve. */
export interface PushPoint {
  client: "go" | "ts";
  sizeMiB: number;
  /** VmRSS and VmHWM right after the first Health call, KiB. */
  postStartRssKb: number;
  postStartHwmKb: number;
  /** VmHWM at the end (digest, push and remove done), KiB. */
  peakHwmKb: number;
  /** Digest and push, wall time. */
  seconds: number;
  cpu: Cpu;
  /** TS only: the largest sampled V8 heap and external memory, bytes. */
  maxHeapUsed?: number;
  maxExternal?: number;
}

/** gobench --series output. */
export interface GoSeries {
  health: { calls: number; rss_kb: number; heap_bytes: number }[];
}

/** The command-line options of bench/side_by_side.ts. */
export interface BenchOptions {
  rounds: number;
  warmPasses: number;
  memoryRuns: number;
  startupRuns: number;
  pushSizesMiB: number[];
  seriesCalls: number;
}

/** Everything one run measured. */
export interface BenchData {
  machine: {
    cpu: string;
    cores: number;
    deno: string;
    v8: string;
    go: string;
    loadBefore: string;
    loadAfter: string;
    seconds: number;
  };
  options: BenchOptions;
  sizes: RoundSizes;
  rounds: { go: ClientRound[]; ts: ClientRound[] };
  noPush: { goHwmKb: number[]; tsHwmKb: number[] };
  series?: { ts: SeriesChildResult; go: GoSeries; calls: number };
  startup?: StartupResult[];
  pushCurve?: PushPoint[];
}

const LABELS: Record<Workload, string> = {
  health: "Health round trip",
  prefixWarm: "EnsurePrefix, warm (short prefix, one open session)",
  turn: "Session turn (open, warm prefix, suffix, decode 32, close)",
  decode: "Decode throughput (512-token streams)",
  prefix64k: "EnsurePrefix, 64 KiB non-ASCII",
  push16m: "PushModel 16 MiB (4 MiB frames)",
};

/** Issue 10's targets, on TS ÷ Go of each workload's value. */
const TARGETS: Record<Workload, Target> = {
  health: { le: 2 },
  prefixWarm: { le: 2 },
  turn: { le: 2 },
  decode: { ge: 0.5 },
  prefix64k: { le: 1.5 },
  push16m: { ge: 0.9 },
};
/** Client CPU for the whole workload set: TS ÷ Go. */
const CPU_TARGET: Target = { le: 3 };
/** Start-up CPU ÷ an empty `deno run`. */
const STARTUP_TARGETS: Partial<Record<StartupResult["id"], Target>> = {
  importAvailable: { le: 1.5 },
  statusDaemon: { le: 3 },
};
/** Push: TS peak VmHWM − post-start VmRSS, MiB, whatever the size. */
const PUSH_HEADROOM_MIB = 64;
/**
 * "RSS after 10,000 calls is flat": RSS growth fitted over the second half of
 * the calls (5,000 to 10,000, when caches, compiled code and the allocators'
 * pools are in place) at most 256 KiB per 1,000 calls, 1.25 MiB over the
 * 5,000 (RSS moves in pages and allocator chunks). Heap growth is shown, with
 * no target: after a forced GC it still moves by ~100 KiB between readings.
 */
const FLAT_RSS_KIB = 256;

type Target = { le: number; ge?: never } | { ge: number; le?: never };

function targetText(t: Target): string {
  return t.le !== undefined ? `≤ ${t.le}×` : `≥ ${t.ge}×`;
}

function met(t: Target, ratio: number): string {
  if (!Number.isFinite(ratio)) return "n/a";
  return (t.le !== undefined ? ratio <= t.le : ratio >= t.ge!) ? "yes" : "no";
}

/** The median of the finite values (NaN when none). */
export function median(values: number[]): number {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Three significant figures, thousands separated. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return "–";
  if (Math.abs(v) >= 10_000) return Math.round(v).toLocaleString("en-US");
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function spread(values: number[]): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return "–";
  return `${fmt(median(finite))} (${fmt(Math.min(...finite))}–${fmt(Math.max(...finite))})`;
}

const total = (c: Cpu) => c.user + c.sys;
const mib = (kb: number) => kb / 1024;

function table(head: string[], align: string, rows: string[][]): string[] {
  const sep = [...align].map((a) => (a === "r" ? "---:" : "---"));
  return [head, sep, ...rows].map((cells) => `| ${cells.join(" | ")} |`);
}

function roundTables(d: BenchData): string[] {
  const { go, ts } = d.rounds;
  const rows = WORKLOADS.map((w) => {
    const g = median(go.map((r) => r.values[w]));
    const t = median(ts.map((r) => r.values[w]));
    const ratio = t / g;
    const cost = HIGHER_IS_BETTER[w] ? g / t : ratio;
    return [
      LABELS[w],
      UNITS[w],
      spread(go.map((r) => r.values[w])),
      spread(ts.map((r) => r.values[w])),
      ratio.toFixed(2),
      `${cost.toFixed(2)}×`,
      targetText(TARGETS[w]),
      met(TARGETS[w], ratio),
    ];
  });
  const peak = (label: string, g: number[], t: number[]) => {
    const ratio = median(t) / median(g);
    return [
      `${label} (VmHWM)`,
      "MiB",
      spread(g.map(mib)),
      spread(t.map(mib)),
      ratio.toFixed(2),
      `${ratio.toFixed(2)}×`,
      "",
      "",
    ];
  };
  rows.push(
    peak(
      "Peak RSS of a process running every workload (warm-up and passes)",
      go.map((r) => r.vmHwmKb),
      ts.map((r) => r.vmHwmKb),
    ),
  );
  if (d.noPush.goHwmKb.length > 0) {
    rows.push(
      peak("Peak RSS, same without the 16 MiB pushes", d.noPush.goHwmKb, d.noPush.tsHwmKb),
    );
  }
  return [
    ...table(
      [
        "Workload",
        "Unit",
        "Go median (min–max)",
        "TS median (min–max)",
        "TS ÷ Go",
        "TS cost vs Go",
        "Target (TS ÷ Go)",
        "Met",
      ],
      "llrrrrll",
      rows,
    ),
    "",
    `"TS cost vs Go" is how many times more time (or fewer ops per second) the TypeScript client ` +
    "takes: above 1 means slower. RSS right after the first Health call: Go " +
    `${fmt(median(go.map((r) => mib(r.postStartRssKb))))} MiB, TS ` +
    `${fmt(median(ts.map((r) => mib(r.postStartRssKb))))} MiB (median).`,
  ];
}

function cpuTable(d: BenchData): string[] {
  const { go, ts } = d.rounds;
  const ms = (rounds: ClientRound[], f: (r: ClientRound) => Cpu) =>
    rounds.map((r) => total(f(r)) / 1e3);
  const rows = WORKLOADS.map((w) => {
    const ops = operations(w, d.sizes);
    const g = median(ms(go, (r) => r.cpu[w]));
    const t = median(ms(ts, (r) => r.cpu[w]));
    return [
      `${LABELS[w]} (${ops.count.toLocaleString("en-US")} ${ops.unit}${
        ops.unit === "MiB" ? "" : "s"
      })`,
      spread(ms(go, (r) => r.cpu[w])),
      spread(ms(ts, (r) => r.cpu[w])),
      `${fmt(g * 1e3 / ops.count)} / ${fmt(t * 1e3 / ops.count)} µs per ${ops.unit}`,
      (t / g).toFixed(2),
      "",
      "",
    ];
  });
  const pass = (f: (c: Cpu) => number) => [go, ts].map((rs) => rs.map((r) => f(r.passCpu) / 1e3));
  const [goPass, tsPass] = pass(total);
  const passRatio = median(tsPass) / median(goPass);
  rows.push(
    [
      "**Whole workload set** (the timed pass, user+sys)",
      spread(goPass),
      spread(tsPass),
      "",
      passRatio.toFixed(2),
      targetText(CPU_TARGET),
      met(CPU_TARGET, passRatio),
    ],
  );
  for (const [name, f] of [["user", (c: Cpu) => c.user], ["sys", (c: Cpu) => c.sys]] as const) {
    const [g, t] = pass(f);
    rows.push([
      `of which ${name}`,
      spread(g),
      spread(t),
      "",
      (median(t) / median(g)).toFixed(2),
      "",
      "",
    ]);
  }
  const proc = [go, ts].map((rs) => rs.map((r) => total(r.processCpu) / 1e3));
  rows.push([
    "Whole client process (start-up, warm-up, pass)",
    spread(proc[0]),
    spread(proc[1]),
    "",
    (median(proc[1]) / median(proc[0])).toFixed(2),
    "",
    "",
  ]);
  const peer = [go, ts].map((rs) => rs.map((r) => total(r.peerCpu) / 1e3));
  rows.push([
    "The peer (server) while serving that process",
    spread(peer[0]),
    spread(peer[1]),
    "",
    (median(peer[1]) / median(peer[0])).toFixed(2),
    "",
    "",
  ]);
  return [
    `### Client CPU time (user+sys, ms, median of ${go.length} processes per client)`,
    "",
    ...table(
      [
        "Workload",
        "Go ms (min–max)",
        "TS ms (min–max)",
        "Go / TS per op",
        "TS ÷ Go",
        "Target",
        "Met",
      ],
      "lrrrrll",
      rows,
    ),
    "",
    "Each client's workload set runs in its own process (Go: gobench; TS: a `deno run` child " +
    "granted `--allow-read=<data root> --allow-net=127.0.0.1`); CPU is getrusage of that process, " +
    "every thread (GC and I/O threads included). The peer's CPU is read from /proc/PID/stat " +
    "(10 ms ticks) before and after each client process.",
  ];
}

function startupTable(results: StartupResult[]): string[] {
  const cpuMs = (r: StartupResult) => r.runs.map((x) => (x.user_us + x.sys_us) / 1e3);
  const empty = median(cpuMs(results.find((r) => r.id === "empty")!));
  const rows = results.map((r) => {
    const ratio = median(cpuMs(r)) / empty;
    const target = STARTUP_TARGETS[r.id];
    return [
      r.label,
      spread(cpuMs(r)),
      spread(r.runs.map((x) => x.user_us / 1e3)),
      spread(r.runs.map((x) => x.sys_us / 1e3)),
      ratio.toFixed(2),
      fmt(median(r.runs.map((x) => x.wall_us / 1e3))),
      fmt(median(r.runs.map((x) => mib(x.maxrss_kb)))),
      target ? targetText(target) : "",
      target ? met(target, ratio) : "",
    ];
  });
  return [
    `### Start-up: CPU time of whole processes (median of ${
      results[0]?.runs.length ?? 0
    } runs each)`,
    "",
    ...table(
      [
        "Process",
        "CPU ms (min–max)",
        "user ms",
        "sys ms",
        "÷ empty `deno run`",
        "Wall ms",
        "Peak RSS MiB",
        "Target",
        "Met",
      ],
      "lrrrrrrll",
      rows,
    ),
    "",
    "Commands (run by `gobench --spawn`, which reports each child's rusage; scenarios " +
    "interleaved, one untimed run of each first to fill Deno's caches):",
    "",
    ...results.map((r) => `- ${r.label}: \`${r.command}\``),
    "",
    "Peak RSS is the child's ru_maxrss, which starts from the spawner's (gobench's, ~10 MiB). " +
    "For a process of a few clock ticks the kernel's user/sys split is an estimate; the sum is " +
    "exact. No `--allow-env`: `status` does not need it (without it the CLI skips looking for " +
    "the modeld binary on PATH, and says so).",
  ];
}

function pushTable(points: PushPoint[]): string[] {
  // Run order alternates; the table goes by size, Go first.
  const sorted = [...points].sort((a, b) =>
    a.sizeMiB - b.sizeMiB || a.client.localeCompare(b.client)
  );
  const rows = sorted.map((p) => {
    const growth = mib(p.peakHwmKb - p.postStartRssKb);
    const ts = p.client === "ts";
    return [
      `${p.sizeMiB.toLocaleString("en-US")} MiB`,
      ts ? "TS" : "Go",
      fmt(mib(p.postStartRssKb)),
      fmt(mib(p.peakHwmKb)),
      fmt(growth),
      fmt(p.sizeMiB / p.seconds),
      fmt(total(p.cpu) / 1e6),
      ts ? `${fmt(p.maxHeapUsed! / 2 ** 20)} / ${fmt(p.maxExternal! / 2 ** 20)}` : "",
      ts ? `≤ ${PUSH_HEADROOM_MIB} MiB` : "",
      ts ? (growth <= PUSH_HEADROOM_MIB ? "yes" : "no") : "",
    ];
  });
  return [
    "### Push memory curve (one fresh process per client and size)",
    "",
    ...table(
      [
        "File",
        "Client",
        "Post-start RSS MiB",
        "Peak (VmHWM) MiB",
        "Peak − post-start MiB",
        "MiB/s (digest + push)",
        "CPU s",
        "TS max heap / external MiB",
        "Target (peak − post-start)",
        "Met",
      ],
      "llrrrrrrll",
      rows,
    ),
    "",
    "Post-start RSS is VmRSS right after the first Health call; the peak is VmHWM after the " +
    "push (TS: `client.pushModelFile(path, {name})`, which hashes the file, then streams it; Go: " +
    "sha256 of the file, then `PushModel` from the open file) and a RemoveModel. Heap and " +
    "external are the largest `Deno.memoryUsage()` values sampled every 10 ms.",
  ];
}

/** Least-squares growth of `value` per 1,000 calls over the points from `from` × the last call count on. */
export function slopePer1000(points: { calls: number; value: number }[], from: number): number {
  const last = points.at(-1)?.calls ?? 0;
  const p = points.filter((x) => x.calls > 0 && x.calls >= from * last);
  const mx = p.reduce((s, x) => s + x.calls, 0) / p.length;
  const my = p.reduce((s, x) => s + x.value, 0) / p.length;
  const num = p.reduce((s, x) => s + (x.calls - mx) * (x.value - my), 0);
  const den = p.reduce((s, x) => s + (x.calls - mx) ** 2, 0);
  return den === 0 ? NaN : num / den * 1000;
}

function seriesTable(s: NonNullable<BenchData["series"]>): string[] {
  const cols: { label: string; points: { calls: number; value: number }[]; limitKib: number }[] = [
    ...(["health", "turn"] as const).flatMap((kind) => [
      {
        label: `TS ${kind === "health" ? "Health" : "turns"}: RSS`,
        points: s.ts[kind].map((p: SeriesPoint) => ({ calls: p.calls, value: p.rss })),
        limitKib: FLAT_RSS_KIB,
      },
      {
        label: `TS ${kind === "health" ? "Health" : "turns"}: V8 heap committed`,
        points: s.ts[kind].map((p: SeriesPoint) => ({ calls: p.calls, value: p.heapTotal })),
        limitKib: NaN,
      },
      {
        label: `TS ${kind === "health" ? "Health" : "turns"}: heap used`,
        points: s.ts[kind].map((p: SeriesPoint) => ({ calls: p.calls, value: p.heapUsed })),
        limitKib: NaN,
      },
    ]),
    {
      label: "Go Health: RSS",
      points: s.go.health.map((p) => ({ calls: p.calls, value: p.rss_kb * 1024 })),
      limitKib: NaN,
    },
    {
      label: "Go Health: heap used",
      points: s.go.health.map((p) => ({ calls: p.calls, value: p.heap_bytes })),
      limitKib: NaN,
    },
  ];
  const rows = s.ts.health.map((p, i) => [
    p.calls.toLocaleString("en-US"),
    ...cols.map((c) => fmt((c.points[i]?.value ?? NaN) / 2 ** 20)),
  ]);
  const overall = cols.map((c) => slopePer1000(c.points, 0.1) / 1024);
  const slopes = cols.map((c) => slopePer1000(c.points, 0.5) / 1024);
  rows.push(["Growth per 1,000 calls from 10 %, KiB", ...overall.map(fmt)]);
  rows.push([
    "**Growth per 1,000 calls, second half, KiB**",
    ...slopes.map((v) => `**${fmt(v)}**`),
  ]);
  rows.push([
    "Target (flat, second half)",
    ...cols.map((c) => (Number.isFinite(c.limitKib) ? `≤ ${c.limitKib}` : "")),
  ]);
  rows.push([
    "Met",
    ...cols.map((c, i) =>
      Number.isFinite(c.limitKib) ? (slopes[i] <= c.limitKib ? "yes" : "no") : ""
    ),
  ]);
  return [
    `### RSS and heap over ${s.calls.toLocaleString("en-US")} calls (MiB, after a forced GC)`,
    "",
    ...table(["Calls", ...cols.map((c) => c.label)], "l" + "r".repeat(cols.length), rows),
    "",
    "One process per client (TS: `--v8-flags=--expose-gc`, `gc()` before each reading, " +
    "`Deno.memoryUsage()` heapTotal (committed) and heapUsed; Go: `runtime.GC()`, heap used = " +
    "HeapAlloc). Turns are counted as five calls each (open, prefix, " +
    "suffix, decode 32, close), on one connection after a first untimed session. Growth is a " +
    "least-squares fit over the points from 10 % of the calls on, and over the second half " +
    "(the first calls still fill caches, compiled code and allocator pools); the target applies " +
    "to the second half.",
  ];
}

function passes(n: number): string {
  if (n === 0) return "";
  return `, then ${n} whole pass${n > 1 ? "es" : ""}, so V8 runs optimised code`;
}

/** The whole Markdown report, raw JSON last. */
export function report(d: BenchData): string {
  const s = d.sizes;
  const lines = [
    "## Side by side: TypeScript client vs Go client" +
    (d.rounds.go.length > 0 ? ` (median of ${d.rounds.go.length} rounds)` : ""),
    "",
    `- CPU: ${d.machine.cpu}, ${d.machine.cores} logical cores`,
    `- Deno ${d.machine.deno} (V8 ${d.machine.v8}); Go client ${d.machine.go}, ` +
    "transportgrpc.DialLeader (contenox/runtime v0.36.0)",
    "- Peer: tests/interop/bin/peer --mode slot (real v0.36.0 gRPC server + slot over the memory service)",
    `- Load average before / after: ${d.machine.loadBefore} / ${d.machine.loadAfter}; ` +
    `the run took ${fmt(d.machine.seconds)} s`,
    "- Each round runs every workload with each client, each in a fresh process (Go: gobench, " +
    "TS: a `deno run` child), alternating which client goes first: an untimed warm-up (a few " +
    `calls of each workload${passes(d.options.warmPasses)}), then one timed pass`,
    `- Per round: ${s.health} Health, ${s.warmPrefixes} warm EnsurePrefix, ${s.turns} turns, ` +
    `${s.decodes} × 512-token decodes, ${s.prefixes} × 64 KiB EnsurePrefix, ` +
    `${s.pushes} × 16 MiB PushModel`,
    `- Options: \`${JSON.stringify(d.options)}\``,
    "",
  ];
  if (d.rounds.go.length > 0) lines.push(...roundTables(d), "", ...cpuTable(d), "");
  if (d.startup) lines.push(...startupTable(d.startup), "");
  if (d.pushCurve) lines.push(...pushTable(d.pushCurve), "");
  if (d.series) lines.push(...seriesTable(d.series), "");
  lines.push("Raw data (JSON):", "", "```json", JSON.stringify(d), "```");
  return lines.join("\n");
}
