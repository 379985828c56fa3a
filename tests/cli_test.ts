/**
 * The CLI as a user runs it: a child Deno process granted only
 * `--allow-read=<data root> --allow-net=127.0.0.1` (plus read on a pushed
 * file), against the TypeScript test daemon started here, through the real
 * lease discovery and gRPC path. Checks the output, the `--json` shapes, the
 * exit codes, stdin prompts, Ctrl-C mid-stream, push progress and `--help`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { main } from "../cli.ts";
import { bufferIo } from "../lib/cli/io.ts";
import { startTestDaemon } from "../testing.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const REPLY = "The sky is blue because air scatters blue light the most.";

interface RunOptions {
  /** The data root granted and passed with `--data-root` (omit for neither). */
  root?: string;
  /** Extra read grants (a pushed file). */
  read?: string[];
  /** Grant `--allow-net=127.0.0.1` (default true). */
  net?: boolean;
  /** Text piped to stdin (default: stdin is null). */
  stdin?: string;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function command(args: string[], options: RunOptions, stdin: "piped" | "null"): Deno.Command {
  const reads = [...(options.root ? [options.root] : []), ...(options.read ?? [])];
  const grants = [
    ...(reads.length > 0 ? [`--allow-read=${reads.join(",")}`] : []),
    ...(options.net === false ? [] : ["--allow-net=127.0.0.1"]),
  ];
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      ...grants,
      CLI,
      ...(options.root ? ["--data-root", options.root] : []),
      ...args,
    ],
    stdin,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

async function run(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const child = command(args, options, options.stdin === undefined ? "null" : "piped").spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

function ndjson(text: string): Record<string, unknown>[] {
  return text.trim().split("\n").map((line) => JSON.parse(line));
}

async function eventually(check: () => boolean, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

// ---------------------------------------------------------------------------
// No daemon

Deno.test("status with a fresh, empty data root reads as a new user would: not running, how to start it (exit 3)", async () => {
  const root = await Deno.makeTempDir();
  try {
    const res = await run(["status"], { root });
    assert.equal(res.code, 3, res.stderr);
    assert.match(res.stdout, /^modeld is not running\n/);
    assert.match(res.stdout, new RegExp(`data root: ${root} \\(no lease\\)`));
    assert.match(res.stdout, new RegExp(`Start it with:\n  modeld serve --data-root ${root}\n`));
    assert.equal(res.stderr, "");

    const json = await run(["status", "--json"], { root });
    assert.equal(json.code, 3);
    const report = JSON.parse(json.stdout);
    assert.equal(report.state, "not_running");
    assert.equal(report.dataRoot, root);
    assert.equal(report.slot, null);
    assert.equal(report.error.code, "not_running");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("generate without a daemon exits 3 and says how to start modeld", async () => {
  const root = await Deno.makeTempDir();
  try {
    const res = await run(["generate", "--model", "m", "hi"], { root });
    assert.equal(res.code, 3, res.stderr);
    assert.equal(res.stdout, "");
    assert.match(res.stderr, /^error: modeld is not running: no lease in /);
    assert.match(res.stderr, new RegExp(`modeld serve --data-root ${root}`));

    const json = await run(["generate", "--json", "--model", "m", "hi"], { root });
    assert.equal(json.code, 3);
    const { error } = JSON.parse(json.stderr);
    assert.deepEqual([error.name, error.code, error.exitCode], [
      "DaemonNotRunningError",
      "not_running",
      3,
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("bad arguments exit 2 with a message saying what to pass", async () => {
  const root = await Deno.makeTempDir();
  try {
    const cases: [string[], RegExp][] = [
      [["generate", "--bogus", "hi"], /Unknown option '--bogus'.*modeldconn generate --help/],
      [["generate", "--max-tokens", "lots", "hi"], /Invalid --max-tokens "lots": pass an integer/],
      [["generate", "--top-p", "2", "hi"], /Invalid --top-p "2": pass a number from 0 to 1/],
      [["generate", "--model"], /--model/],
      [["frobnicate"], /Unknown command "frobnicate"/],
      [["models", "push"], /models push takes the model FILE/],
      [["models", "shuffle"], /Unknown subcommand models shuffle/],
      [["describe"], /Cannot choose a model: pass --model NAME/],
      [["--timeout", "0", "status"], /Invalid --timeout "0"/],
      // A negative value after a space is a value, not a flag: say what is wrong with it.
      [
        ["generate", "--max-tokens", "-5", "hi"],
        /Invalid --max-tokens "-5": pass an integer from 1/,
      ],
      [
        ["generate", "--temperature", "-1", "hi"],
        /Invalid --temperature "-1": pass a number of at least 0/,
      ],
      [["chat", "--top-k", "-2"], /Invalid --top-k "-2": pass an integer from 0/],
      [["unload", "--generation", "-1"], /Invalid --generation "-1"/],
      [[], /No command given/],
    ];
    for (const [args, message] of cases) {
      const res = await run(args, { root });
      assert.equal(res.code, 2, `${args.join(" ")}: ${res.stderr}`);
      assert.match(res.stderr, /^error: /m, args.join(" "));
      assert.match(res.stderr, message, args.join(" "));
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("--help lists the commands, global flags, permissions and exit codes", async () => {
  const res = await run(["--help"]);
  assert.equal(res.code, 0, res.stderr);
  for (const word of ["status", "describe", "generate", "chat", "embed", "models ls"]) {
    assert.ok(res.stdout.includes(`  ${word}`), word);
  }
  for (const flag of ["--data-root DIR", "--json", "--timeout MS", "-h, --help"]) {
    assert.ok(res.stdout.includes(flag), flag);
  }
  assert.match(res.stdout, /--allow-read=\$HOME\/\.contenox --allow-net=127\.0\.0\.1/);
  assert.match(res.stdout, /Exit codes:\n {2}0 {4}ok\n/);
  for (const code of ["1", "2", "3", "4", "5", "6", "7", "130"]) {
    assert.match(res.stdout, new RegExp(`^  ${code} +\\S`, "m"), code);
  }
  const gen = await run(["generate", "--help"]);
  assert.equal(gen.code, 0);
  for (const flag of ["--max-tokens", "--temperature", "--top-p", "--top-k", "--seed"]) {
    assert.ok(gen.stdout.includes(flag), flag);
  }
  assert.match(gen.stdout, /Ctrl-C cancels the generation/);
  assert.equal((await run(["help", "models"])).stdout, (await run(["models", "--help"])).stdout);
});

Deno.test("without --allow-net the CLI exits 7 and names the flag", async () => {
  await using daemon = await startTestDaemon();
  const res = await run(["generate", "--model", "m", "--path", "/m.gguf", "hi"], {
    root: daemon.dataRoot,
    net: false,
  });
  assert.equal(res.code, 7, res.stderr);
  assert.match(res.stderr, /^error: .*\(run with --allow-net=127\.0\.0\.1\)/);
});

Deno.test("without --data-root or --allow-env the error names the --allow-env grant (exit 7)", async () => {
  const res = await run(["status"]);
  assert.equal(res.code, 7, res.stderr);
  assert.match(res.stderr, /run with --allow-env=CONTENOX_DATA_ROOT,HOME/);
});

// ---------------------------------------------------------------------------
// status

Deno.test("status against a running v0.36.0 daemon: endpoint, backend, instance, lease, slot", async () => {
  await using daemon = await startTestDaemon({ models: { tiny: "GGUF" } });
  const human = await run(["status"], { root: daemon.dataRoot });
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^modeld is running\n/);
  assert.match(human.stdout, new RegExp(`endpoint: +${daemon.endpoint}\n`));
  assert.match(human.stdout, /backend: +llama\n/);
  assert.match(human.stdout, new RegExp(`instance: +${daemon.instanceId}\n`));
  assert.match(human.stdout, /lease: +renewed, expires \d{4}-\d\d-\d\dT/);
  assert.match(human.stdout, /slot: +Empty\n {2}active model: +none\n/);

  // Load a model so the slot has one, then ask again with --json.
  await run(["generate", "--model", "tiny", "--max-tokens", "2", "hi"], { root: daemon.dataRoot });
  const json = await run(["status", "--json"], { root: daemon.dataRoot });
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout);
  assert.equal(report.state, "running");
  assert.equal(report.endpoint, daemon.endpoint);
  assert.equal(report.instanceId, daemon.instanceId);
  assert.equal(report.backend, "llama");
  assert.ok(Date.parse(report.leaseExpiresAt) > Date.now());
  assert.equal(typeof report.slot.state, "string");
  assert.equal(report.slot.active.modelName, "tiny");
  assert.equal(typeof report.slot.active.generation, "number");
});

Deno.test("status against a v0.32.3 daemon omits the slot and says the daemon predates it", async () => {
  await using daemon = await startTestDaemon({ version: "v0.32.3" });
  const human = await run(["status"], { root: daemon.dataRoot });
  assert.equal(human.code, 0, human.stderr);
  assert.match(
    human.stdout,
    /slot: +unknown: this modeld predates slot status \(added in v0\.32\.4\)/,
  );
  assert.doesNotMatch(human.stdout, /active model/);
  const report = JSON.parse((await run(["status", "--json"], { root: daemon.dataRoot })).stdout);
  assert.equal(report.slot, null);
  assert.match(report.slotUnavailable, /predates/);
});

Deno.test("a v0.32.3 daemon has no model store: models ls exits 5 with the version to upgrade to", async () => {
  await using daemon = await startTestDaemon({ version: "v0.32.3" });
  const res = await run(["models", "ls"], { root: daemon.dataRoot });
  assert.equal(res.code, 5, res.stderr);
  assert.match(res.stderr, /predates it \(needs contenox runtime v0\.34\.0 or newer\)/);
  assert.match(res.stderr, /^hint: upgrade the contenox runtime to v0\.34\.0 or newer$/m);
});

// ---------------------------------------------------------------------------
// generate

Deno.test("generate streams the reply to stdout and closes its session", async () => {
  await using daemon = await startTestDaemon({ reply: REPLY, models: { tiny: "GGUF" } });
  const res = await run(["generate", "--model", "tiny", "Why", "is", "the", "sky", "blue?"], {
    root: daemon.dataRoot,
  });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, `${REPLY}\n`);
  assert.equal(res.stderr, "");
  assert.equal(daemon.openSessions, 0);
  const methods = daemon.requests.map((r) => r.method);
  for (const m of ["OpenSession", "EnsurePrefix", "PrefillSuffix", "Decode", "CloseSession"]) {
    assert.ok(methods.includes(m), m);
  }
});

Deno.test("generate --json prints one object per chunk, then a done object", async () => {
  await using daemon = await startTestDaemon({ reply: REPLY, models: { tiny: "GGUF" } });
  const res = await run(["generate", "--json", "--system", "Be terse.", "hi"], {
    root: daemon.dataRoot,
  });
  assert.equal(res.code, 0, res.stderr);
  const lines = ndjson(res.stdout);
  const done = lines.pop()!;
  assert.ok(lines.length > 1);
  for (const line of lines) {
    assert.deepEqual(Object.keys(line).sort(), ["text", "thinking", "toolCalls"]);
  }
  assert.equal(lines.map((l) => l.text).join(""), REPLY);
  assert.equal(done.done, true);
  assert.equal(done.interrupted, false);
  assert.equal(done.chunks, lines.length);
  assert.equal(typeof done.prefilledTokens, "number");
});

Deno.test("generate reads the prompt from stdin when no PROMPT is given", async () => {
  await using daemon = await startTestDaemon({
    reply: ({ prompt }) => `echo: ${prompt.suffix}`,
    models: { tiny: "GGUF" },
  });
  const res = await run(["generate", "--model", "tiny"], {
    root: daemon.dataRoot,
    stdin: "a prompt from stdin\n",
  });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, "echo: a prompt from stdin\n");

  const empty = await run(["generate", "--model", "tiny"], { root: daemon.dataRoot, stdin: "" });
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /the prompt on stdin is empty/);
});

Deno.test("generate sends the sampling flags to the daemon", async () => {
  let seen: unknown;
  await using daemon = await startTestDaemon({
    reply: ({ config }) => {
      seen = config;
      return "ok";
    },
    models: { tiny: "GGUF" },
  });
  const res = await run([
    "generate",
    "--model=tiny",
    "--max-tokens=7",
    "--temperature=0.5",
    "--top-p=0.9",
    "--top-k=40",
    "--seed=42",
    "--",
    "-a prompt with a dash",
  ], { root: daemon.dataRoot });
  assert.equal(res.code, 0, res.stderr);
  const config = seen as Record<string, unknown>;
  assert.equal(config.maxTokens, 7);
  assert.equal(config.temperature, 0.5);
  assert.ok(Math.abs((config.topP as number) - 0.9) < 1e-6);
  assert.equal(config.topK, 40);
  assert.equal(config.seed, 42n);
});

Deno.test("generate --thinking shows reasoning deltas on stderr; without it they are hidden", async () => {
  await using daemon = await startTestDaemon({
    reply: () => ({ thinking: ["Let me", " think."], tokens: ["Four", "."] }),
    models: { tiny: "GGUF" },
  });
  const shown = await run(["generate", "--thinking", "2+2?"], { root: daemon.dataRoot });
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal(shown.stdout, "Four.\n");
  assert.equal(shown.stderr, "Let me think.\n");
  const hidden = await run(["generate", "2+2?"], { root: daemon.dataRoot });
  assert.equal(hidden.stdout, "Four.\n");
  assert.equal(hidden.stderr, "");
  const json = ndjson(
    (await run(["generate", "--json", "2+2?"], { root: daemon.dataRoot })).stdout,
  );
  assert.equal(json.map((l) => l.thinking ?? "").join(""), "Let me think.");
});

Deno.test("generate uses the only model in the store, and lists them when there are several", async () => {
  await using one = await startTestDaemon({ reply: "from the only model", models: { solo: "G" } });
  const ok = await run(["generate", "hi"], { root: one.dataRoot });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, "from the only model\n");

  await using two = await startTestDaemon({ models: { alpha: "G", beta: "G" } });
  const res = await run(["generate", "hi"], { root: two.dataRoot });
  assert.equal(res.code, 2);
  assert.match(res.stderr, /the store has 2 \(alpha, beta\); pass --model NAME/);

  await using none = await startTestDaemon();
  const empty = await run(["generate", "hi"], { root: none.dataRoot });
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /store is empty.*models push FILE --name NAME/);
});

Deno.test("a model the daemon does not have exits 6 with what to do", async () => {
  await using daemon = await startTestDaemon();
  const res = await run(["generate", "--model", "nope", "hi"], { root: daemon.dataRoot });
  assert.equal(res.code, 6, res.stderr);
  assert.match(res.stderr, /^error: .*model_not_found/m);
  assert.match(res.stderr, /^hint: push it with `modeldconn models push FILE --name NAME`/m);
});

Deno.test("Ctrl-C mid-stream cancels the decode, closes the session and exits 130", async () => {
  await using daemon = await startTestDaemon({
    reply: "one two three four five six seven eight nine ten eleven twelve thirteen fourteen",
    chunkDelayMs: 150,
    models: { tiny: "GGUF" },
  });
  const child = command(["generate", "--model", "tiny", "count"], { root: daemon.dataRoot }, "null")
    .spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  while (!stdout.includes("two")) {
    const next = await reader.read();
    if (next.done) break;
    stdout += next.value;
  }
  assert.equal(daemon.openSessions, 1);
  child.kill("SIGINT");
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    stdout += next.value;
  }
  const status = await child.status;
  assert.equal(status.code, 130, await stderr);
  assert.match(await stderr, /interrupted: generation cancelled/);
  assert.ok(!stdout.includes("fourteen"), stdout);
  assert.ok(await eventually(() => daemon.openSessions === 0), "the session stays open");
  assert.ok(daemon.decodesCancelled >= 1);
  assert.ok(daemon.requests.some((r) => r.method === "CloseSession"));
});

// ---------------------------------------------------------------------------
// chat

Deno.test("chat: piped lines are turns on one warm session; --stats shows the prefix reuse", async () => {
  await using daemon = await startTestDaemon({
    reply: ({ prompt }) => prompt.suffix.endsWith("Second?") ? "Two." : "One.",
    models: { tiny: "GGUF" },
  });
  const res = await run(["chat", "--system", "You are terse.", "--stats"], {
    root: daemon.dataRoot,
    stdin: "First?\n\nSecond?\n/exit\nnever sent\n",
  });
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, "One.\nTwo.\n");
  const stats = [...res.stderr.matchAll(/\[turn (\d+): reused (\d+) tokens, prefilled (\d+)/g)];
  assert.equal(stats.length, 2, res.stderr);
  assert.equal(stats[0][2], "0"); // cold
  assert.equal(Number(stats[1][2]), "You are terse.".length); // the system prompt, reused
  assert.equal(daemon.requests.filter((r) => r.method === "OpenSession").length, 1);
  assert.equal(daemon.openSessions, 0);
});

Deno.test("chat --json prints one object per turn", async () => {
  await using daemon = await startTestDaemon({ reply: "Sure.", models: { tiny: "GGUF" } });
  const res = await run(["chat", "--json", "--system", "S"], {
    root: daemon.dataRoot,
    stdin: "a\nb", // no newline after the last turn
  });
  assert.equal(res.code, 0, res.stderr);
  const turns = ndjson(res.stdout);
  assert.deepEqual(turns.map((t) => [t.turn, t.user, t.reply]), [[1, "a", "Sure."], [
    2,
    "b",
    "Sure.",
  ]]);
  assert.equal(turns[0].reusedTokens, 0);
  assert.equal(turns[1].reusedTokens, 1);
  assert.equal(turns[1].interrupted, false);
});

// ---------------------------------------------------------------------------
// describe, embed, models

Deno.test("describe prints the model's context sizes; --json has the ModelInfo", async () => {
  await using daemon = await startTestDaemon({ models: { tiny: "GGUF" } });
  const res = await run(["describe", "--model", "tiny", "--ctx", "2048"], {
    root: daemon.dataRoot,
  });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^tiny\n/);
  assert.match(res.stdout, /effective context: +2048\n/);
  const json = JSON.parse(
    (await run(["describe", "--json", "--model", "tiny", "--ctx", "2048"], {
      root: daemon.dataRoot,
    })).stdout,
  );
  assert.equal(json.info.effectiveContext, 2048);
  assert.equal(json.config.numCtx, 2048);
});

Deno.test("embed prints the vector as JSON", async () => {
  await using daemon = await startTestDaemon({
    embedding: (text) => [text.length, 0.5, -1],
    models: { emb: "GGUF" },
  });
  const res = await run(["embed", "--model", "emb", "hello"], { root: daemon.dataRoot });
  assert.equal(res.code, 0, res.stderr);
  assert.deepEqual(JSON.parse(res.stdout), [5, 0.5, -1]);
  const json = JSON.parse(
    (await run(["embed", "--json", "--model", "emb", "hi"], { root: daemon.dataRoot })).stdout,
  );
  assert.deepEqual(json, { model: "emb", dimensions: 3, vector: [2, 0.5, -1] });
});

Deno.test("load and unload: an explicitly loaded model makes embed busy; the hint names unload, which frees it", async () => {
  await using daemon = await startTestDaemon({
    embedding: (text) => [text.length],
    models: { emb: "GGUF" },
  });
  const root = daemon.dataRoot;
  const loaded = await run(["load", "--model", "emb"], { root });
  assert.equal(loaded.code, 0, loaded.stderr);
  assert.match(loaded.stdout, /^loaded emb \(generation \d+\)/);
  assert.match(loaded.stderr, /until `modeldconn unload`/);

  const busy = await run(["embed", "--model", "emb", "hi"], { root });
  assert.equal(busy.code, 6, busy.stderr);
  assert.match(busy.stderr, /model_busy/);
  assert.match(busy.stderr, /hint: .*`modeldconn load`.*`modeldconn unload`/);

  const unloaded = await run(["unload"], { root });
  assert.equal(unloaded.code, 0, unloaded.stderr);
  assert.match(unloaded.stdout, /^unloaded/);
  const ok = await run(["embed", "--model", "emb", "hi"], { root });
  assert.equal(ok.code, 0, ok.stderr);

  const json = JSON.parse((await run(["load", "--json"], { root })).stdout);
  assert.equal(json.modelName, "emb"); // the only stored model, as generate and chat choose it
  const stale = await run(["unload", "--generation", "1"], { root });
  assert.equal(stale.code, 6, stale.stderr);
  assert.match(stale.stderr, /slot_generation_stale/);
  assert.equal((await run(["unload", "--generation", String(json.generation)], { root })).code, 0);
});

Deno.test("models push shows progress lines, then ls, df and rm see the model", async () => {
  await using daemon = await startTestDaemon();
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "tiny.gguf");
    const bytes = new Uint8Array(9 * 1024 * 1024).map((_, i) => i % 251);
    await Deno.writeFile(file, bytes);
    const root = daemon.dataRoot;

    const denied = await run(["models", "push", file], { root });
    assert.equal(denied.code, 7, denied.stderr);
    assert.ok(denied.stderr.includes(`(run with --allow-read=${file})`), denied.stderr);

    const res = await run(["models", "push", file], { root, read: [file] });
    assert.equal(res.code, 0, res.stderr);
    const lines = res.stdout.trim().split("\n");
    assert.ok(!res.stdout.includes("\r"), "no bar when stdout is not a terminal");
    const pushLines = lines.filter((l) => l.startsWith("push tiny"));
    assert.ok(pushLines.length >= 2, res.stdout);
    assert.match(
      pushLines.at(-1)!,
      /^push tiny {2}100% {2}9\.0 MiB \/ 9\.0 MiB {2}\S+ \S+\/s {2}in /,
    );
    assert.ok(lines.some((l) => /^hash tiny {2}100%/.test(l)), res.stdout);
    assert.match(lines.at(-1)!, /^pushed tiny \(9\.0 MiB, sha256:[0-9a-f]{12}\)$/);

    const again = await run(["models", "push", "--json", "--name", "tiny", file], {
      root,
      read: [file],
    });
    assert.equal(again.code, 0, again.stderr);
    const pushed = JSON.parse(again.stdout);
    assert.equal(pushed.alreadyPresent, true);
    assert.equal(pushed.sizeBytes, bytes.length);

    const ls = JSON.parse((await run(["models", "ls", "--json"], { root })).stdout);
    assert.deepEqual(ls.map((m: { name: string }) => m.name), ["tiny"]);
    assert.equal(ls[0].sizeBytes, bytes.length);
    const table = await run(["models", "ls"], { root });
    assert.match(table.stdout, /^NAME +TYPE +SIZE +CONTEXT +DIGEST\ntiny +llama +9\.0 MiB/);

    const df = await run(["models", "df", "--json"], { root });
    assert.equal(df.code, 0, df.stderr);
    assert.equal(typeof JSON.parse(df.stdout).freeBytes, "number");

    assert.equal((await run(["models", "rm", "tiny"], { root })).stdout, "removed tiny\n");
    const gone = await run(["models", "rm", "tiny"], { root });
    assert.equal(gone.code, 6, gone.stderr);
    assert.match(gone.stderr, /model_not_found/);
    // Advice for removal, not for loading: nothing to push or --path.
    assert.match(gone.stderr, /hint: .*nothing to remove.*`modeldconn models ls`/);
    assert.doesNotMatch(gone.stderr, /push it|--path/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// In process

Deno.test("main() runs in process with its own I/O and returns the exit code", async () => {
  const io = bufferIo();
  assert.equal(await main(["status", "--help"], io), 0);
  assert.match(io.stdout.text, /^Usage: modeldconn status/);

  const bad = bufferIo();
  assert.equal(await main(["generate", "--json", "--nope"], bad), 2);
  assert.equal(JSON.parse(bad.stderr.text).error.name, "UsageError");

  const tty = bufferIo(); // stdin is a terminal: no prompt to read
  const root = await Deno.makeTempDir();
  try {
    assert.equal(await main(["generate", "--data-root", root], tty), 2);
    assert.match(tty.stderr.text, /no prompt \(pass PROMPT, or pipe it on stdin\)/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
