/**
 * Side-by-side: this TypeScript client against the real Go client
 * (transportgrpc.DialLeader of contenox/runtime v0.36.0) on the same peer.
 *
 * Run from the repository root (builds bin/peer and bin/gobench first):
 *
 *   bash tests/interop/build.sh && mkdir -p .cache/tmp && TMPDIR=$PWD/.cache/tmp deno run \
 *     --allow-read=.cache/tmp --allow-write=.cache/tmp --allow-net=127.0.0.1 \
 *     --allow-sys=cpus,loadavg \
 *     --allow-run=tests/interop/bin/peer,tests/interop/bin/gobench,.tools/node_modules/deno/deno \
 *     bench/side_by_side.ts [--rounds 7]
 *
 * (With another deno binary, put its path — `deno eval 'console.log(Deno.execPath())'`
 * — in --allow-run instead of .tools/node_modules/deno/deno.) The Markdown
 * report goes to stdout, progress to stderr.
 *
 * Method: ONE peer in slot mode (what modeld serves; PushModel needs it; the
 * slot keeps the resident session, so a turn's EnsurePrefix is warm). Each
 * round runs every workload once with the Go client (a fresh gobench process:
 * untimed warm-up, then one timed pass) and once with the TypeScript client
 * (in this process, warmed up once), alternating which goes first. The table
 * shows the median over rounds, the spread (min–max), and the ratio. Peak RSS
 * is measured in processes that run only one client's workload (untimed
 * warm-up plus one pass): VmHWM of gobench (read by itself) and of a child
 * `deno run` of this script with `--rss-child` (read by `gobench --vmhwm PID`
 * while the child waits, since Deno refuses /proc reads without -A), plus the
 * child's largest sampled `Deno.memoryUsage().rss`. (getrusage ru_maxrss is
 * not used: Linux carries the spawner's RSS over into it.)
 *
 * @module
 */

import os from "node:os";
import process from "node:process";
import {
  DEFAULT_SIZES,
  GOBENCH_BIN,
  HIGHER_IS_BETTER,
  type Rounds,
  type RoundSizes,
  startBenchPeer,
  TsWorkloads,
  UNITS,
  type Workload,
} from "./workloads.ts";

const WORKLOADS: Workload[] = ["health", "turn", "decode", "prefix64k", "push16m"];
const LABELS: Record<Workload, string> = {
  health: "Health round trip",
  turn: "Session turn (open, warm prefix, suffix, decode 32, close)",
  decode: "Decode throughput (512-token streams)",
  prefix64k: "EnsurePrefix, 64 KiB non-ASCII",
  push16m: "PushModel 16 MiB (4 MiB frames)",
};

interface GoResult {
  client: "go";
  go_version: string;
  rounds: Record<Workload, number[]>;
  rss_hwm_kb: number;
  maxrss_kb: number;
  go_sys_bytes: number;
}

interface RssResult {
  /** VmHWM of the child (read by `gobench --vmhwm PID`), KiB. */
  vmHwmKb: number;
  /** getrusage ru_maxrss via node:process, KiB; inherits the spawner's RSS on Linux. */
  maxRssKb: number;
  /** The largest `Deno.memoryUsage().rss` sampled every 5 ms, bytes. */
  maxSampledRss: number;
  /** `Deno.memoryUsage().rss` right after the first Health call, bytes. */
  afterConnectRss: number;
}

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function fmt(v: number): string {
  if (v >= 10_000) return Math.round(v).toLocaleString("en-US");
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function log(message: string): void {
  console.error(`side_by_side: ${message}`);
}

// ---------------------------------------------------------------------------
// --rss-child DATA_ROOT: only the TypeScript workload, for its memory.

async function rssChild(dataRoot: string, skipPush: boolean): Promise<void> {
  let maxSampledRss = Deno.memoryUsage().rss;
  const sampler = setInterval(() => {
    maxSampledRss = Math.max(maxSampledRss, Deno.memoryUsage().rss);
  }, 5);
  await using ts = new TsWorkloads(dataRoot, { skipPush });
  await ts.client.health();
  const afterConnectRss = Deno.memoryUsage().rss;
  await ts.warmUp();
  await ts.round(DEFAULT_SIZES);
  clearInterval(sampler);
  maxSampledRss = Math.max(maxSampledRss, Deno.memoryUsage().rss);
  const result: Omit<RssResult, "vmHwmKb"> = {
    maxRssKb: process.resourceUsage().maxRSS,
    maxSampledRss,
    afterConnectRss,
  };
  console.log(JSON.stringify(result));
  // Stay alive (the client closed) until the parent has read our VmHWM and closes stdin.
  for await (const _ of Deno.stdin.readable) { /* wait for EOF */ }
}

// ---------------------------------------------------------------------------
// The comparison.

async function runGo(
  endpoint: string,
  instance: string,
  sizes: RoundSizes,
  skipPush = false,
): Promise<GoResult> {
  const out = await new Deno.Command(GOBENCH_BIN, {
    args: [
      ...(skipPush ? ["--skip-push"] : []),
      "--endpoint",
      endpoint,
      "--instance",
      instance,
      "--rounds",
      "1",
      "--health",
      String(sizes.health),
      "--turns",
      String(sizes.turns),
      "--decodes",
      String(sizes.decodes),
      "--prefixes",
      String(sizes.prefixes),
      "--pushes",
      String(sizes.pushes),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`gobench failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

async function runRssChild(dataRoot: string, skipPush: boolean): Promise<RssResult> {
  const script = new URL(import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      `--allow-read=${dataRoot}`,
      "--allow-net=127.0.0.1",
      script,
      "--rss-child",
      dataRoot,
      ...(skipPush ? ["--skip-push"] : []),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  try {
    let text = "";
    for await (const piece of child.stdout.pipeThrough(new TextDecoderStream())) {
      text += piece;
      if (text.includes("\n")) break; // releases the reader; the child writes nothing more
    }
    if (!text.includes("\n")) throw new Error("RSS child exited without a result");
    const partial = JSON.parse(text.slice(0, text.indexOf("\n")));
    const out = await new Deno.Command(GOBENCH_BIN, { args: ["--vmhwm", String(child.pid)] })
      .output();
    if (!out.success) throw new Error("gobench --vmhwm failed");
    const { vmhwm_kb } = JSON.parse(new TextDecoder().decode(out.stdout));
    return { ...partial, vmHwmKb: vmhwm_kb };
  } finally {
    await writer.close().catch(() => {});
    const status = await child.status;
    if (!status.success) log(`RSS child exited with ${status.code}`);
  }
}

function machine(): string[] {
  const cpu = os.cpus()[0]?.model ?? "unknown";
  return [
    `- CPU: ${cpu}, ${navigator.hardwareConcurrency} logical cores`,
    `- Deno ${Deno.version.deno} (V8 ${Deno.version.v8}), TypeScript client in-process`,
  ];
}

function loadavg(): string {
  return Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
}

async function compare(): Promise<void> {
  const rounds = flag("--rounds", 7);
  const sizes = DEFAULT_SIZES;
  const loadBefore = loadavg();
  await using peer = await startBenchPeer("slot");
  log(`peer (slot) at ${peer.endpoint}, ${rounds} rounds`);

  const goRounds = Object.fromEntries(WORKLOADS.map((w) => [w, []])) as unknown as Rounds;
  const tsRounds = Object.fromEntries(WORKLOADS.map((w) => [w, []])) as unknown as Rounds;
  const goHwm: number[] = [];
  const goSys: number[] = [];
  let goVersion = "";

  await using ts = new TsWorkloads(peer.dataRoot);
  let tsWarm = false;
  const runTs = async () => {
    // The Go client may have left the slot holding its identity: start from empty.
    await ts.client.unloadModel();
    if (!tsWarm) {
      await ts.warmUp();
      tsWarm = true;
    }
    const r = await ts.round(sizes);
    for (const w of WORKLOADS) tsRounds[w].push(r[w]);
  };
  const runGoRound = async () => {
    const r = await runGo(peer.endpoint, peer.instanceId, sizes);
    for (const w of WORKLOADS) goRounds[w].push(r.rounds[w][0]);
    goHwm.push(r.rss_hwm_kb);
    goSys.push(r.go_sys_bytes);
    goVersion = r.go_version;
  };
  for (let i = 0; i < rounds; i++) {
    if (i % 2 === 0) {
      await runGoRound();
      await runTs();
    } else {
      await runTs();
      await runGoRound();
    }
    log(`round ${i + 1}/${rounds} done`);
  }
  await ts.client.unloadModel();
  ts.client.close();

  const rss: RssResult[] = [];
  const rssNoPush: RssResult[] = [];
  const goHwmNoPush: number[] = [];
  for (let i = 0; i < 3; i++) {
    rss.push(await runRssChild(peer.dataRoot, false));
    rssNoPush.push(await runRssChild(peer.dataRoot, true));
    goHwmNoPush.push((await runGo(peer.endpoint, peer.instanceId, sizes, true)).rss_hwm_kb);
  }
  log("memory runs done");
  const loadAfter = loadavg();

  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  const lines = [
    `## Side by side: TypeScript client vs Go client (median of ${rounds} rounds)`,
    "",
    ...machine(),
    `- Go client: ${goVersion}, transportgrpc.DialLeader (contenox/runtime v0.36.0), gobench subprocess`,
    `- Peer: tests/interop/bin/peer --mode slot (real v0.36.0 gRPC server + slot over the memory service)`,
    `- Load average before / after: ${loadBefore} / ${loadAfter}`,
    `- Per round: ${sizes.health} Health, ${sizes.turns} turns, ${sizes.decodes} × 512-token decodes, ` +
    `${sizes.prefixes} × 64 KiB EnsurePrefix, ${sizes.pushes} × 16 MiB PushModel`,
    "",
    "| Workload | Unit | Go median (min–max) | TS median (min–max) | TS ÷ Go | TS cost vs Go |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
  ];
  for (const w of WORKLOADS) {
    const go = median(goRounds[w]);
    const tsv = median(tsRounds[w]);
    const ratio = tsv / go;
    const cost = HIGHER_IS_BETTER[w] ? go / tsv : ratio;
    const spread = (v: number[]) => `${fmt(Math.min(...v))}–${fmt(Math.max(...v))}`;
    lines.push(
      `| ${LABELS[w]} | ${UNITS[w]} | ${fmt(go)} (${spread(goRounds[w])}) | ${fmt(tsv)} (${
        spread(tsRounds[w])
      }) | ${ratio.toFixed(2)} | ${cost.toFixed(2)}× |`,
    );
  }
  const peakRow = (label: string, go: number, tsv: number) =>
    `| ${label} (VmHWM) | MiB | ${go.toFixed(1)} | ${tsv.toFixed(1)} | ${(tsv / go).toFixed(2)} | ${
      (tsv / go).toFixed(2)
    }× |`;
  const goPeak = median(goHwm) / 1024;
  const tsPeak = median(rss.map((r) => r.vmHwmKb)) / 1024;
  lines.push(
    `| Peak RSS of a process running every workload once (VmHWM) | MiB | ${goPeak.toFixed(1)} | ${
      tsPeak.toFixed(1)
    } | ${(tsPeak / goPeak).toFixed(2)} | ${(tsPeak / goPeak).toFixed(2)}× |`,
    peakRow(
      "Peak RSS, same without the 16 MiB pushes",
      median(goHwmNoPush) / 1024,
      median(rssNoPush.map((r) => r.vmHwmKb)) / 1024,
    ),
    "",
    `"TS cost vs Go" is how many times more time (or fewer ops per second) the TypeScript client ` +
      "takes: above 1 means slower.",
    "",
    `Memory detail: Go runtime.MemStats.Sys median ${mib(median(goSys))} MiB; ` +
      `TS largest sampled Deno.memoryUsage().rss median ${
        mib(median(rss.map((r) => r.maxSampledRss)))
      } MiB, ` +
      `RSS right after the first Health call ${
        mib(median(rss.map((r) => r.afterConnectRss)))
      } MiB (runtime baseline).`,
    "",
    "Raw rounds (JSON):",
    "",
    "```json",
    JSON.stringify({
      go: goRounds,
      ts: tsRounds,
      goVmHwmKb: goHwm,
      goVmHwmKbNoPush: goHwmNoPush,
      tsRss: rss,
      tsRssNoPush: rssNoPush,
    }),
    "```",
  );
  console.log(lines.join("\n"));
}

if (import.meta.main) {
  const child = Deno.args.indexOf("--rss-child");
  if (child >= 0) await rssChild(Deno.args[child + 1], Deno.args.includes("--skip-push"));
  else await compare();
}
