/**
 * Side-by-side: this TypeScript client against the real Go client
 * (transportgrpc.DialLeader of contenox/runtime v0.36.0) on the same peer:
 * time per call, CPU time, start-up cost, the push memory curve and memory
 * over many calls, each against issue 10's targets.
 *
 * Run from the repository root: `deno task bench:go [flags]` (builds
 * bin/peer and bin/gobench first). Flags:
 *
 *   --rounds N          rounds of the time/CPU comparison (default 7; 0 skips)
 *   --warm-passes N     untimed whole passes before each timed one (default 1)
 *   --memory-runs N     processes per client for the peak RSS without pushes (default 3)
 *   --startup-runs N    runs of each start-up scenario (default 10; 0 skips)
 *   --push-sizes A,B,C  push memory curve file sizes in MiB (default 16,256,1024)
 *   --skip-push-curve   leave the push memory curve out
 *   --series-calls N    calls of the RSS series (default 10000; 0 skips)
 *   --quick             --rounds 1 --warm-passes 0 --memory-runs 1 --startup-runs 3
 *                       --push-sizes 16 --series-calls 1000 (later flags override)
 *
 * The Markdown report goes to stdout, progress to stderr. The deno binary is
 * `Deno.execPath()`; with another one than .tools/node_modules/deno/deno, put
 * its path in the task's --allow-run.
 *
 * Method: ONE peer in slot mode (what modeld serves; PushModel needs it; the
 * slot keeps the resident session, so a turn's EnsurePrefix is warm). Every
 * client workload runs in its own process, so CPU and memory are the
 * client's alone: each round starts gobench and a child `deno run` of this
 * script (`--child {...}`, see side_by_side_children.ts), alternating which
 * goes first; each does an untimed warm-up (a few calls of each workload,
 * then `--warm-passes` whole passes: a fresh V8 needs a few hundred calls
 * before its optimised code runs), then one timed pass. The peak RSS
 * is VmHWM of those processes (the TS child's read by `gobench --vmhwm PID`,
 * since Deno refuses /proc reads without -A; getrusage ru_maxrss is not used:
 * Linux carries the spawner's RSS over into it). Start-up CPU is the rusage
 * of whole processes run by `gobench --spawn` (Deno's Command does not report
 * it).
 *
 * @module
 */

import os from "node:os";
import { join } from "node:path";
import {
  type ChildParams,
  type PushChildResult,
  type RoundChildResult,
  runChild,
  type SeriesChildResult,
} from "./side_by_side_children.ts";
import {
  type BenchData,
  type BenchOptions,
  type ClientRound,
  type GoSeries,
  type PushPoint,
  report,
  type SpawnRun,
  type StartupResult,
} from "./side_by_side_report.ts";
import {
  type BenchPeer,
  type Cpu,
  DEFAULT_SIZES,
  GOBENCH_BIN,
  type RoundSizes,
  startBenchPeer,
  type Workload,
  WORKLOADS,
} from "./workloads.ts";

function parseOptions(args: string[]): BenchOptions {
  const o: BenchOptions = {
    rounds: 7,
    warmPasses: 1,
    memoryRuns: 3,
    startupRuns: 10,
    pushSizesMiB: [16, 256, 1024],
    seriesCalls: 10_000,
  };
  const count = (name: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name} wants a whole number, got ${v}`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    switch (a) {
      case "--quick":
        Object.assign(o, {
          rounds: 1,
          warmPasses: 0,
          memoryRuns: 1,
          startupRuns: 3,
          pushSizesMiB: [16],
          seriesCalls: 1_000,
        });
        break;
      case "--rounds":
        o.rounds = count(a, args[++i]);
        break;
      case "--warm-passes":
        o.warmPasses = count(a, args[++i]);
        break;
      case "--memory-runs":
        o.memoryRuns = count(a, args[++i]);
        break;
      case "--startup-runs":
        o.startupRuns = count(a, args[++i]);
        break;
      case "--series-calls":
        o.seriesCalls = count(a, args[++i]);
        break;
      case "--push-sizes":
        o.pushSizesMiB = (args[++i] ?? "").split(",").filter((s) => s !== "").map((s) =>
          count(a, s)
        );
        break;
      case "--skip-push-curve":
        o.pushSizesMiB = [];
        break;
      default:
        throw new Error(`unknown flag ${a} (see the header of bench/side_by_side.ts)`);
    }
  }
  return o;
}

function log(message: string): void {
  console.error(`side_by_side: ${message}`);
}

const decoder = new TextDecoder();

// ---------------------------------------------------------------------------
// gobench

/** Runs gobench and parses the JSON it prints. */
async function gobench<T>(args: string[]): Promise<T> {
  const out = await new Deno.Command(GOBENCH_BIN, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`gobench ${args.join(" ")} failed: ${decoder.decode(out.stderr)}`);
  }
  return JSON.parse(decoder.decode(out.stdout));
}

interface ProcInfo {
  vmhwm_kb: number;
  vmrss_kb: number;
  user_us: number;
  sys_us: number;
}

/** Memory and CPU of another process (`gobench --vmhwm`). */
function procInfo(pid: number): Promise<ProcInfo> {
  return gobench<ProcInfo>(["--vmhwm", String(pid)]);
}

interface GoRoundOutput {
  rounds: Record<Workload, number[]>;
  cpu_us: Record<Workload, Cpu[]>;
  pass_cpu_us: Cpu[];
  process_cpu_us: Cpu;
  post_start_rss_kb: number;
  rss_hwm_kb: number;
}

function sizeArgs(sizes: RoundSizes): string[] {
  return [
    "--health",
    String(sizes.health),
    "--warm-prefixes",
    String(sizes.warmPrefixes),
    "--turns",
    String(sizes.turns),
    "--decodes",
    String(sizes.decodes),
    "--prefixes",
    String(sizes.prefixes),
    "--pushes",
    String(sizes.pushes),
  ];
}

// ---------------------------------------------------------------------------
// Deno children (see side_by_side_children.ts for the protocol)

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const piece of stream.pipeThrough(new TextDecoderStream())) {
    buffered += piece;
    for (let i = buffered.indexOf("\n"); i >= 0; i = buffered.indexOf("\n")) {
      yield buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
    }
  }
  if (buffered !== "") yield buffered;
}

/**
 * Runs this script as a child (`--child PARAMS`), granted only
 * `--allow-read=<read> --allow-net=127.0.0.1`; calls `onReady` at each ready
 * line and `onDone` at the result line, both while the child waits.
 */
async function runDenoChild<T>(
  params: ChildParams,
  read: string[],
  hooks: {
    v8Flags?: string;
    onReady?: (pid: number) => Promise<void>;
    onDone?: (pid: number) => Promise<void>;
  } = {},
): Promise<T> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      ...(hooks.v8Flags ? [`--v8-flags=${hooks.v8Flags}`] : []),
      `--allow-read=${read.join(",")}`,
      "--allow-net=127.0.0.1",
      new URL(import.meta.url).pathname,
      "--child",
      JSON.stringify(params),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  let result: T | undefined;
  try {
    for await (const line of lines(child.stdout)) {
      const msg = JSON.parse(line);
      if (msg.event === "ready") {
        await hooks.onReady?.(child.pid);
        await writer.write(new TextEncoder().encode("go\n"));
      } else if (msg.event === "done") {
        await hooks.onDone?.(child.pid);
        result = msg as T;
        break;
      }
    }
  } finally {
    await writer.close().catch(() => {});
    const status = await child.status;
    if (!status.success) log(`${params.kind} child exited with ${status.code}`);
  }
  if (result === undefined) throw new Error(`${params.kind} child exited without a result`);
  return result;
}

// ---------------------------------------------------------------------------
// The round comparison

async function withPeerCpu<T>(peer: BenchPeer, f: () => Promise<T>): Promise<[T, Cpu]> {
  const before = await procInfo(peer.pid);
  const value = await f();
  const after = await procInfo(peer.pid);
  return [value, { user: after.user_us - before.user_us, sys: after.sys_us - before.sys_us }];
}

async function goRound(
  peer: BenchPeer,
  sizes: RoundSizes,
  skipPush: boolean,
  warmPasses: number,
): Promise<ClientRound> {
  const [out, peerCpu] = await withPeerCpu(peer, () =>
    gobench<GoRoundOutput>([
      ...(skipPush ? ["--skip-push"] : []),
      "--endpoint",
      peer.endpoint,
      "--instance",
      peer.instanceId,
      "--rounds",
      String(warmPasses + 1),
      ...sizeArgs(sizes),
    ]));
  // The last round is the timed pass; the ones before it are the warm passes.
  const pick = <V>(m: Record<Workload, V[]>, missing: V) =>
    Object.fromEntries(WORKLOADS.map((w) => [w, m[w]?.at(-1) ?? missing])) as Record<Workload, V>;
  return {
    values: pick(out.rounds, NaN),
    cpu: pick(out.cpu_us, { user: NaN, sys: NaN }),
    passCpu: out.pass_cpu_us.at(-1)!,
    processCpu: out.process_cpu_us,
    postStartRssKb: out.post_start_rss_kb,
    vmHwmKb: out.rss_hwm_kb,
    peerCpu,
  };
}

async function tsRound(
  peer: BenchPeer,
  sizes: RoundSizes,
  skipPush: boolean,
  warmPasses: number,
): Promise<ClientRound> {
  let vmHwmKb = 0;
  const [out, peerCpu] = await withPeerCpu(peer, () =>
    runDenoChild<RoundChildResult>(
      { kind: "round", dataRoot: peer.dataRoot, sizes, skipPush, warmPasses },
      [peer.dataRoot],
      { onDone: async (pid) => void (vmHwmKb = (await procInfo(pid)).vmhwm_kb) },
    ));
  return {
    values: out.values,
    // JSON has no NaN: a skipped workload comes back as null.
    cpu: Object.fromEntries(
      WORKLOADS.map((w) => [w, { user: out.cpu[w].user ?? NaN, sys: out.cpu[w].sys ?? NaN }]),
    ) as Record<Workload, Cpu>,
    passCpu: out.passCpu,
    processCpu: out.processCpu,
    postStartRssKb: out.postStartRss / 1024,
    vmHwmKb,
    peerCpu,
  };
}

// ---------------------------------------------------------------------------
// Start-up

async function startup(peer: BenchPeer, runs: number, tmp: string): Promise<StartupResult[]> {
  const deno = Deno.execPath();
  const script = (p: string) => new URL(p, import.meta.url).pathname;
  const noLease = await Deno.makeTempDir({ dir: tmp, prefix: "no-lease-" });
  // What a user grants the CLI (see cli.ts); --allow-env would only add the binary search.
  const grant = (root: string) => [`--allow-read=${root}`, "--allow-net=127.0.0.1"];
  const cli = script("../cli.ts");
  const scenarios:
    (Omit<StartupResult, "runs" | "command"> & { argv: string[]; exit: number; stdout: RegExp })[] =
      [
        {
          id: "empty",
          label: "Empty `deno run` (an empty .ts file)",
          argv: [deno, "run", script("./startup/empty.ts")],
          exit: 0,
          stdout: /^$/,
        },
        {
          id: "importAvailable",
          label: '`import "@contenox/modeldconn"` + `await available()`, no lease',
          argv: [deno, "run", ...grant(noLease), script("./startup/import_available.ts"), noLease],
          exit: 0,
          stdout: /^false\n$/,
        },
        {
          id: "statusNoDaemon",
          label: "`cli.ts status`, no daemon",
          argv: [deno, "run", ...grant(noLease), cli, "--data-root", noLease, "status"],
          exit: 3,
          stdout: /not running/,
        },
        {
          id: "statusDaemon",
          label: "`cli.ts status` against the running peer",
          argv: [deno, "run", ...grant(peer.dataRoot), cli, "--data-root", peer.dataRoot, "status"],
          exit: 0,
          stdout: new RegExp(`running[^]*${peer.instanceId}`),
        },
        {
          id: "goStatusNoDaemon",
          label: "Go: `gobench --status`, no daemon (lease, then Health + Status)",
          argv: [GOBENCH_BIN, "--status", noLease],
          exit: 3,
          stdout: /not running/,
        },
        {
          id: "goStatusDaemon",
          label: "Go: `gobench --status` against the running peer",
          argv: [GOBENCH_BIN, "--status", peer.dataRoot],
          exit: 0,
          stdout: new RegExp(`running[^]*${peer.instanceId}`),
        },
      ];
  const spawnOnce = async (s: (typeof scenarios)[number]): Promise<SpawnRun> => {
    const out = await gobench<{ runs: SpawnRun[]; stdout: string; stderr: string }>([
      "--spawn",
      "1",
      "--",
      ...s.argv,
    ]);
    // Each run must have done its job: a fast failure would read as a fast start.
    if (out.runs[0].exit !== s.exit || !s.stdout.test(out.stdout)) {
      throw new Error(
        `${s.id}: exit ${out.runs[0].exit} (want ${s.exit}), output:\n${out.stdout}\n${out.stderr}`,
      );
    }
    return out.runs[0];
  };
  try {
    for (const s of scenarios) await spawnOnce(s); // fills Deno's transpile and code caches
    const results = scenarios.map((s) => ({ id: s.id, label: s.label, runs: [] as SpawnRun[] }));
    for (let i = 0; i < runs; i++) {
      for (const [j, s] of scenarios.entries()) results[j].runs.push(await spawnOnce(s));
    }
    const cwd = Deno.cwd() + "/";
    return results.map((r, j) => ({
      ...r,
      command: scenarios[j].argv.map((a) => a.replace(cwd, "")).join(" "),
    }));
  } finally {
    await Deno.remove(noLease, { recursive: true });
  }
}

// ---------------------------------------------------------------------------
// The push memory curve

async function pushCurve(peer: BenchPeer, sizesMiB: number[], tmp: string): Promise<PushPoint[]> {
  const points: PushPoint[] = [];
  for (const [i, sizeMiB] of sizesMiB.entries()) {
    const file = join(tmp, `push-curve-${sizeMiB}m.bin`);
    await gobench(["--gen-file", file, "--size", String(sizeMiB * 2 ** 20)]);
    try {
      const go = async () => {
        const out = await gobench<{
          post_start_rss_kb: number;
          post_start_hwm_kb: number;
          peak_hwm_kb: number;
          seconds: number;
          cpu_us: Cpu;
        }>([
          "--endpoint",
          peer.endpoint,
          "--instance",
          peer.instanceId,
          "--push-file",
          file,
          "--name",
          `bench-curve-go-${sizeMiB}`,
        ]);
        points.push({
          client: "go",
          sizeMiB,
          postStartRssKb: out.post_start_rss_kb,
          postStartHwmKb: out.post_start_hwm_kb,
          peakHwmKb: out.peak_hwm_kb,
          seconds: out.seconds,
          cpu: out.cpu_us,
        });
      };
      const ts = async () => {
        let post: ProcInfo | undefined, end: ProcInfo | undefined;
        const out = await runDenoChild<PushChildResult>(
          { kind: "push", dataRoot: peer.dataRoot, file, name: `bench-curve-ts-${sizeMiB}` },
          [peer.dataRoot, file],
          {
            onReady: async (pid) => void (post = await procInfo(pid)),
            onDone: async (pid) => void (end = await procInfo(pid)),
          },
        );
        points.push({
          client: "ts",
          sizeMiB,
          postStartRssKb: post!.vmrss_kb,
          postStartHwmKb: post!.vmhwm_kb,
          peakHwmKb: end!.vmhwm_kb,
          seconds: out.seconds,
          cpu: out.cpu,
          maxHeapUsed: out.maxHeapUsed,
          maxExternal: out.maxExternal,
        });
      };
      for (const run of i % 2 === 0 ? [go, ts] : [ts, go]) await run();
      log(`push curve ${sizeMiB} MiB done`);
    } finally {
      await Deno.remove(file).catch(() => {});
    }
  }
  return points;
}

// ---------------------------------------------------------------------------
// The comparison

function loadavg(): string {
  return Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
}

async function compare(o: BenchOptions): Promise<void> {
  const started = performance.now();
  const sizes = DEFAULT_SIZES;
  const loadBefore = loadavg();
  // Under $TMPDIR (the task sets .cache/tmp): the push curve's files and an empty data root.
  const tmp = await Deno.makeTempDir({ prefix: "side-by-side-" });
  await using _tmp = { [Symbol.asyncDispose]: () => Deno.remove(tmp, { recursive: true }) };
  await using peer = await startBenchPeer("slot");
  log(`peer (slot) at ${peer.endpoint}; ${JSON.stringify(o)}`);

  const data: BenchData = {
    machine: {
      cpu: os.cpus()[0]?.model ?? "unknown",
      cores: navigator.hardwareConcurrency,
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      go: (await gobench<{ go_version: string }>(["--version"])).go_version,
      loadBefore,
      loadAfter: "",
      seconds: 0,
    },
    options: { ...o },
    sizes,
    rounds: { go: [], ts: [] },
    noPush: { goHwmKb: [], tsHwmKb: [] },
  };

  for (let i = 0; i < o.rounds; i++) {
    const go = async () => {
      data.rounds.go.push(await goRound(peer, sizes, false, o.warmPasses));
    };
    const ts = async () =>
      void data.rounds.ts.push(await tsRound(peer, sizes, false, o.warmPasses));
    for (const run of i % 2 === 0 ? [go, ts] : [ts, go]) await run();
    log(`round ${i + 1}/${o.rounds} done`);
  }
  for (let i = 0; i < (o.rounds > 0 ? o.memoryRuns : 0); i++) {
    data.noPush.goHwmKb.push((await goRound(peer, sizes, true, o.warmPasses)).vmHwmKb);
    data.noPush.tsHwmKb.push((await tsRound(peer, sizes, true, o.warmPasses)).vmHwmKb);
    log(`memory run without pushes ${i + 1}/${o.memoryRuns} done`);
  }
  if (o.seriesCalls > 0) {
    const ts = await runDenoChild<SeriesChildResult>(
      { kind: "series", dataRoot: peer.dataRoot, calls: o.seriesCalls },
      [peer.dataRoot],
      { v8Flags: "--expose-gc" },
    );
    const go = await gobench<GoSeries>([
      "--endpoint",
      peer.endpoint,
      "--instance",
      peer.instanceId,
      "--series",
      String(o.seriesCalls),
    ]);
    data.series = { ts, go, calls: o.seriesCalls };
    log("RSS series done");
  }
  if (o.startupRuns > 0) {
    data.startup = await startup(peer, o.startupRuns, tmp);
    log("start-up runs done");
  }
  if (o.pushSizesMiB.length > 0) data.pushCurve = await pushCurve(peer, o.pushSizesMiB, tmp);

  data.machine.loadAfter = loadavg();
  data.machine.seconds = (performance.now() - started) / 1e3;
  console.log(report(data));
}

if (import.meta.main) {
  const child = Deno.args.indexOf("--child");
  if (child >= 0) await runChild(JSON.parse(Deno.args[child + 1]));
  else await compare(parseOptions(Deno.args));
}
