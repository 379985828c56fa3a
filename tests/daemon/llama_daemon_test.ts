/**
 * The llama.cpp daemon (`@contenox/modeldconn/daemon`) through this package's
 * own client: lease, slot, sessions, overflow, cancel, snapshots, embed, the
 * model store. Most tests use the tiny synthetic GGUF (fast, gibberish); the
 * semantic ones use SmolLM2-135M-Instruct from `deno task model`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { serve } from "../../daemon.ts";
import { CHATML_TEMPLATE, syntheticGguf } from "../../lib/daemon/llama/synthetic_gguf.ts";
import { readLease } from "../../lib/lease.ts";
import { denoInfo } from "../../lib/testing/_test_support.ts";
import {
  buildContext,
  ContextOverflowError,
  DigestMismatchError,
  ModelBusyError,
  ModeldClient,
  ModelLoadFailedError,
  UnsupportedFeatureError,
} from "../../mod.ts";

const SMOL = join(Deno.cwd(), ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf");
const THREADS = 1; // tests share 2 cores with the test runner

async function tempRoot(): Promise<string> {
  await Deno.mkdir(".cache/tmp/daemon", { recursive: true });
  return await Deno.makeTempDir({ dir: join(Deno.cwd(), ".cache/tmp/daemon") });
}

async function synthetic(root: string, name = "tiny.gguf", contextLength = 2048): Promise<string> {
  const path = join(root, name);
  await Deno.writeFile(path, syntheticGguf({ contextLength }));
  return path;
}

/** A daemon on a fresh data root with the synthetic model written into it. */
async function tiny(options: { contextLength?: number; idleTtlMs?: number } = {}) {
  const root = await tempRoot();
  const model = await synthetic(root, "tiny.gguf", options.contextLength);
  const daemon = await serve({
    dataRoot: root,
    threads: THREADS,
    idleTtlMs: options.idleTtlMs ?? 0,
  });
  const client = new ModeldClient({ dataRoot: root });
  return {
    root,
    model,
    daemon,
    client,
    async [Symbol.asyncDispose]() {
      await client.close();
      await daemon.close();
    },
  };
}

async function smolPath(): Promise<string> {
  try {
    await Deno.stat(SMOL);
  } catch {
    throw new Error(`${SMOL} is missing: run \`deno task model\` first`);
  }
  return SMOL;
}

async function chat(
  session: Awaited<ReturnType<ModeldClient["openSession"]>>,
  messages: Parameters<typeof buildContext>[0],
  maxTokens = 24,
) {
  const ctx = await buildContext(messages);
  const before = await session.explainContext();
  const prefix = await session.ensurePrefix(ctx.prefix);
  const suffix = await session.prefillSuffix(ctx.suffix);
  // What llama.cpp really evaluated for this turn's prompt, in how many evaluations.
  const after = await session.explainContext();
  const evaluated = after.physicalPrefillTokens - before.physicalPrefillTokens;
  const evaluations = after.physicalPrefillCalls - before.physicalPrefillCalls;
  const text = (await session.decode({ maxTokens, temperature: 0 }).collect()).text;
  return { prefix, suffix, text, evaluated, evaluations };
}

Deno.test("serve takes the lease (backend llama), refuses a second daemon, and removes the lease on close", async () => {
  const root = await tempRoot();
  const daemon = await serve({ dataRoot: root, threads: THREADS, idleTtlMs: 0 });
  const lease = await readLease(root);
  assert.equal(lease?.meta.backend, "llama");
  assert.equal(lease?.meta.endpoint, daemon.endpoint);
  assert.equal(lease?.instanceId, daemon.instanceId);
  await assert.rejects(serve({ dataRoot: root, threads: THREADS }), (err: Error) => {
    assert.equal(err.name, "LeaseHeldError");
    return true;
  });
  await daemon.close();
  await assert.rejects(Deno.stat(join(root, "modeld.lease")), Deno.errors.NotFound);
  await Deno.remove(root, { recursive: true });
});

Deno.test("SmolLM2: greedy answers Paris; same seed + temperature 0 gives the same text; the second turn reuses the prefix", async () => {
  const model = await smolPath();
  const root = await tempRoot();
  await using daemon = await serve({ dataRoot: root, threads: THREADS, idleTtlMs: 0 });
  await using client = new ModeldClient({ dataRoot: root });
  await using session = await client.openSession({ name: "smol", type: "llama", path: model }, {
    config: { numCtx: 2048 },
  });
  const system = { role: "system" as const, content: "You are a helpful assistant." };
  const question = { role: "user" as const, content: "What is the capital of France?" };
  const first = await chat(session, [system, question]);
  assert.match(first.text, /Paris/, first.text);
  assert.equal(first.prefix.reusedTokens, 0);
  const again = await chat(session, [system, question]);
  assert.equal(again.text, first.text, "greedy decoding is deterministic");
  assert.equal(again.prefix.reusedTokens, first.prefix.prefixTokens, "the system prompt is warm");
  const turn2 = await chat(session, [
    system,
    question,
    { role: "assistant", content: first.text },
    { role: "user", content: "And of Germany?" },
  ]);
  assert.equal(turn2.prefix.prefilledTokens, 0, JSON.stringify(turn2.prefix));
  assert.ok(turn2.suffix.suffixTokens > first.suffix.suffixTokens, "the conversation grew");
  // Turn 2 evaluates only its new tokens: the system prompt and turn 1 stay in the KV cache.
  assert.equal(first.evaluated, first.prefix.prefixTokens + first.suffix.suffixTokens);
  // The prefix waits for the suffix: one llama.cpp evaluation, not two small ones.
  assert.equal(first.evaluations, 1, "prefix and suffix are evaluated in one batch");
  const prompt2 = turn2.prefix.prefixTokens + turn2.suffix.suffixTokens;
  assert.ok(
    turn2.evaluated < first.evaluated && turn2.evaluated * 3 < prompt2,
    `turn 2 evaluated ${turn2.evaluated} of its ${prompt2} prompt tokens, turn 1 ${first.evaluated}`,
  );
  console.log(
    `prompt tokens evaluated: turn 1 ${first.evaluated}, turn 2 ${turn2.evaluated} ` +
      `(turn 2 prompt ${prompt2} tokens)`,
  );
  void daemon;
});

Deno.test("sampling: same seed at temperature 0.8 repeats; MaxTokens caps the chunks", async () => {
  await using t = await tiny();
  const { client, model } = t;
  await using session = await client.openSession({ name: "tiny", type: "llama", path: model }, {
    config: { numCtx: 256 },
  });
  const run = async (seed: number) => {
    const ctx = await buildContext([{ role: "user", content: "hello there" }]);
    await session.ensurePrefix(ctx.prefix);
    await session.prefillSuffix(ctx.suffix);
    const chunks = [];
    for await (const d of session.decode({ maxTokens: 12, temperature: 0.8, seed: BigInt(seed) })) {
      chunks.push(d.text);
    }
    return chunks;
  };
  const a = await run(7);
  const b = await run(7);
  assert.deepEqual(a, b);
  assert.ok(a.length >= 1 && a.length <= 12, `${a.length} chunks`);
});

Deno.test("context_overflow carries real counts at the prefix, suffix and decode stages", async () => {
  await using t = await tiny();
  const { client, model } = t;
  await using session = await client.openSession({ name: "tiny", type: "llama", path: model }, {
    config: { numCtx: 32 },
  });
  const long = "the quick brown fox jumps over the lazy dog ".repeat(8);
  const big = await buildContext([{ role: "system", content: long }, {
    role: "user",
    content: "x",
  }]);
  const err = await session.ensurePrefix(big.prefix).then(() => undefined, (e) => e);
  assert.ok(err instanceof ContextOverflowError, String(err));
  assert.equal(err.stage, "prefix");
  assert.equal(err.numCtx, 32);
  assert.equal(err.residentTokens, 0);
  assert.ok(err.additionalTokens > 32, String(err.additionalTokens));
  const small = await buildContext([{ role: "system", content: "hi" }, {
    role: "user",
    content: long,
  }]);
  const st = await session.ensurePrefix(small.prefix);
  const err2 = await session.prefillSuffix(small.suffix).then(() => undefined, (e) => e);
  assert.ok(err2 instanceof ContextOverflowError, String(err2));
  assert.equal(err2.stage, "suffix");
  assert.equal(err2.residentTokens, st.residentTokens);
  assert.ok(err2.residentTokens + err2.additionalTokens > 32);

  // A decode that fills the window ends with an in-band overflow, never a silent shift.
  const fits = await buildContext([{ role: "user", content: "go" }]);
  await session.ensurePrefix(fits.prefix);
  const ready = await session.prefillSuffix(fits.suffix);
  let text = "";
  const err3 = await (async () => {
    for await (const d of session.decode({ maxTokens: 100, temperature: 1, seed: 5n })) {
      text += d.text;
    }
  })().then(() => undefined, (e) => e);
  assert.ok(err3 instanceof ContextOverflowError, `${err3} after ${JSON.stringify(text)}`);
  assert.equal(err3.stage, "decode");
  assert.equal(err3.numCtx, 32);
  assert.equal(err3.residentTokens, 32);
  assert.ok(ready.residentTokens < 32);
  assert.equal(
    (await session.explainContext()).residentTokens,
    32,
    "the window is full, not shifted",
  );
});

Deno.test("a template that refuses a system message still loads (the load's warm-up evaluates nothing); the refusal reaches only the call that sends one", async () => {
  const root = await tempRoot();
  const model = join(root, "nosys.gguf");
  const refuse = "{% if messages[0]['role'] == 'system' %}" +
    "{{ raise_exception('System role not supported') }}{% endif %}";
  await Deno.writeFile(model, syntheticGguf({ chatTemplate: refuse + CHATML_TEMPLATE }));
  {
    await using _daemon = await serve({ dataRoot: root, threads: THREADS, idleTtlMs: 0 });
    await using client = new ModeldClient({ dataRoot: root });
    await using session = await client.openSession({ name: "nosys", type: "llama", path: model });
    const fresh = await session.explainContext();
    assert.equal(fresh.residentTokens, 0);
    assert.equal(fresh.physicalPrefillCalls, 0);
    const turn = await chat(session, [{ role: "user", content: "Hi" }], 4);
    assert.ok(turn.evaluated > 0, "a user-only conversation is served");
    await assert.rejects(
      chat(session, [{ role: "system", content: "Be terse." }, { role: "user", content: "Hi" }]),
      /System role not supported/,
    );
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("a missing or non-GGUF model is model_load_failed, and Status says why", async () => {
  const root = await tempRoot();
  const garbage = join(root, "garbage.gguf");
  await Deno.writeTextFile(garbage, "this is not a model");
  await using _daemon = await serve({ dataRoot: root, threads: THREADS, idleTtlMs: 0 });
  await using client = new ModeldClient({ dataRoot: root });
  for (const path of [garbage, join(root, "missing.gguf")]) {
    const err = await client.openSession({ name: "bad", type: "llama", path }).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(err instanceof ModelLoadFailedError, String(err));
    assert.match(err.message, new RegExp(path.replaceAll("/", "\\/").replaceAll(".", "\\.")));
    const st = await client.status();
    assert.equal(st.state, "Failed");
    assert.match(st.lastError, /modeld failed to load model: llama model KV profile/);
    assert.match(st.lastError, path.endsWith("missing.gguf") ? /no such file/ : /not a GGUF file/);
  }
});

Deno.test("cancelling a decode stops it and frees the slot: another model loads right after", async () => {
  const root = await tempRoot();
  const a = await synthetic(root, "a.gguf");
  const b = await synthetic(root, "b.gguf");
  await using _daemon = await serve({ dataRoot: root, threads: THREADS, idleTtlMs: 0 });
  await using client = new ModeldClient({ dataRoot: root });
  const session = await client.openSession({ name: "a", type: "llama", path: a }, {
    config: { numCtx: 1024 },
  });
  const ctx = await buildContext([{ role: "user", content: "go" }]);
  await session.ensurePrefix(ctx.prefix);
  await session.prefillSuffix(ctx.suffix);
  const controller = new AbortController();
  let chunks = 0;
  for await (
    const _ of session.decode({ maxTokens: 900, temperature: 1, seed: 1n }, {
      signal: controller.signal,
    })
  ) {
    if (++chunks === 3) controller.abort();
  }
  assert.ok(chunks >= 3 && chunks < 900, `${chunks} chunks`);
  const busy = await client.loadModel({ name: "b", type: "llama", path: b }).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(busy instanceof ModelBusyError, "the handle is still open");
  await session.close();
  const active = await client.loadModel({ name: "b", type: "llama", path: b });
  assert.equal(active.modelName, "b");
  assert.equal((await client.status()).state, "Ready");
});

Deno.test("a second OpenSession while the handle is held is model_busy", async () => {
  await using t = await tiny();
  const { client, model } = t;
  await using _held = await client.openSession({ name: "tiny", type: "llama", path: model });
  await using other = new ModeldClient({ dataRoot: t.root });
  const err = await other.openSession({ name: "tiny", type: "llama", path: model }).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(err instanceof ModelBusyError, String(err));
});

Deno.test("snapshot / restore round-trips the KV state through <dataRoot>/modeld-blobs/llama", async () => {
  await using t = await tiny();
  const { client, model } = t;
  await using session = await client.openSession({ name: "tiny", type: "llama", path: model }, {
    config: { numCtx: 512 },
  });
  const ctx = await buildContext([{ role: "system", content: "you are a helpful assistant" }, {
    role: "user",
    content: "hello",
  }]);
  await session.ensurePrefix(ctx.prefix);
  await session.prefillSuffix(ctx.suffix);
  const before = await session.explainContext();
  const snap = await session.snapshot();
  assert.match(snap.stateId, /^[0-9a-f]{64}$/);
  assert.equal(snap.residentTokens, before.residentTokens);
  await Deno.stat(join(t.root, "modeld-blobs", "llama", `${snap.stateId}.bin`));
  const expected = (await session.decode({ maxTokens: 8, temperature: 0 }).collect()).text;
  const other = await buildContext([{ role: "system", content: "different" }, {
    role: "user",
    content: "x",
  }]);
  await session.ensurePrefix(other.prefix);
  await session.restore(snap);
  const after = await session.explainContext();
  assert.equal(after.residentTokens, before.residentTokens);
  assert.equal(after.prefixTokens, before.prefixTokens);
  const replay = (await session.decode({ maxTokens: 8, temperature: 0 }).collect()).text;
  assert.equal(replay, expected, "decoding from the restored state repeats the greedy reply");
  await Deno.remove(join(t.root, "modeld-blobs", "llama", `${snap.stateId}.bin`));
  const err = await session.restore(snap).then(() => undefined, (e) => e);
  assert.match(String(err), /snapshot blob not found/);
});

Deno.test("embed returns an L2-normalized vector; describe reads the GGUF", async () => {
  await using t = await tiny({ contextLength: 1024 });
  const { client, model } = t;
  const v = await client.embed({ name: "tiny", type: "llama", path: model }, "hello world");
  assert.equal(v.length, 32);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-4, String(norm));
  const info = await client.describe({ name: "tiny", type: "llama", path: model }, {
    config: { numCtx: 512 },
  });
  assert.equal(info.modelMaxContext, 1024);
  assert.equal(info.effectiveContext, 512);
  assert.ok(info.kvBytesPerToken > 0n);
  assert.equal(info.weightsBytes, BigInt((await Deno.stat(model)).size));
});

Deno.test("model store: a pushed model loads by name; garbage pushes load-fail; a wrong digest is refused", async () => {
  const root = await tempRoot();
  await using _daemon = await serve({ dataRoot: root, threads: THREADS, idleTtlMs: 0 });
  await using client = new ModeldClient({ dataRoot: root });
  const bytes = syntheticGguf();
  const wrong = await client.pushModel(bytes, { name: "tiny", digest: "0".repeat(64) }).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(wrong instanceof DigestMismatchError, String(wrong));
  await client.pushModel(bytes, { name: "tiny" });
  const listed = await client.listModels();
  assert.deepEqual(listed.map((m) => [m.name, m.sizeBytes]), [["tiny", BigInt(bytes.length)]]);
  await using session = await client.openSession({ name: "tiny", type: "llama" }, {
    config: { numCtx: 128 },
  });
  await session.close();
  await client.unloadModel();
  await client.pushModel(new TextEncoder().encode("garbage"), { name: "junk" });
  const err = await client.openSession({ name: "junk", type: "llama" }).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(err instanceof ModelLoadFailedError, String(err));
});

Deno.test("the idle reaper unloads an idle model (state Idle)", async () => {
  await using t = await tiny({ idleTtlMs: 1000 });
  const { client, model } = t;
  await client.loadModel({ name: "tiny", type: "llama", path: model });
  assert.equal((await client.status()).state, "Ready");
  await new Promise((r) => setTimeout(r, 2600));
  const st = await client.status();
  assert.equal(st.state, "Idle");
  assert.equal(st.active, undefined);
});

/** Starts `cli.ts serve` in a child with the daemon's permissions; resolves with its endpoint. */
async function serveChild(root: string, ttl = "30s") {
  const deno = Deno.execPath();
  const child = new Deno.Command(deno, {
    args: [
      "run",
      "--no-prompt",
      `--allow-read=${root},node_modules,/usr`,
      `--allow-write=${root}`,
      "--allow-net=127.0.0.1",
      "--allow-ffi=node_modules",
      "--allow-env",
      "--allow-sys",
      `--allow-run=${deno}`,
      "cli.ts",
      "serve",
      "--data-root",
      root,
      "--threads",
      "1",
      "--ttl",
      ttl,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = await reader.read();
  reader.releaseLock();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream());
  return { child, endpoint: (first.value ?? "").trim(), stderr };
}

Deno.test("cli serve: SIGTERM stops cleanly (lease removed); after SIGKILL a new daemon takes over the stale lease", async () => {
  const root = await tempRoot();
  const a = await serveChild(root);
  assert.match(a.endpoint, /^127\.0\.0\.1:\d+$/);
  a.child.kill("SIGTERM");
  assert.equal((await a.child.status).code, 0);
  assert.match(await Array.fromAsync(a.stderr).then((t) => t.join("")), /modeld owner stopped/);
  await assert.rejects(Deno.stat(join(root, "modeld.lease")), Deno.errors.NotFound);

  const b = await serveChild(root, "2s");
  const before = await readLease(root);
  b.child.kill("SIGKILL");
  await b.child.status;
  await Array.fromAsync(b.stderr);
  await Array.fromAsync(b.child.stdout).catch(() => {});
  assert.ok(await readLease(root), "SIGKILL leaves the lease behind");
  await new Promise((r) => setTimeout(r, 2500)); // the 2 s lease goes stale
  const c = await serveChild(root);
  const after = await readLease(root);
  assert.notEqual(
    after?.instanceId,
    before?.instanceId,
    "the new daemon took the stale lease over",
  );
  await using client = new ModeldClient({ dataRoot: root });
  assert.equal((await client.health()).instanceId, after?.instanceId);
  await client.close();
  c.child.kill("SIGTERM");
  assert.equal((await c.child.status).code, 0);
  await Array.fromAsync(c.stderr);
  await Array.fromAsync(c.child.stdout).catch(() => {});
});

Deno.test("structured output and parser protocols: a JSON Schema constrains the text; tool-call envelopes become tool calls; unknown protocols are unsupported_feature", async () => {
  await using t = await tiny();
  const { client, model } = t;
  await using session = await client.openSession({ name: "tiny", type: "llama", path: model }, {
    config: { numCtx: 512 },
  });
  const prime = async () => {
    const ctx = await buildContext([{ role: "user", content: "answer" }]);
    await session.ensurePrefix(ctx.prefix);
    await session.prefillSuffix(ctx.suffix);
  };
  await prime();
  const schema = {
    type: "object",
    properties: { answer: { enum: ["yes", "no"] } },
    required: ["answer"],
  };
  const out = await session.decode({
    maxTokens: 200,
    temperature: 0.8,
    seed: 3n,
    structuredOutput: { protocol: "json_schema", payload: JSON.stringify(schema) },
  }).collect();
  // Even a model of random weights answers in the schema, and stops where the JSON ends.
  assert.ok(["yes", "no"].includes(JSON.parse(out.text).answer), out.text);
  assert.equal(out.text, out.text.trimEnd());

  await prime();
  const envelope = {
    type: "object",
    properties: {
      tool_calls: {
        type: "array",
        items: {
          type: "object",
          properties: {
            name: { enum: ["get_weather"] },
            arguments: {
              type: "object",
              properties: { unit: { enum: ["c", "f"] } },
              required: ["unit"],
            },
          },
          required: ["name", "arguments"],
        },
        minItems: 1,
        maxItems: 1,
      },
    },
    required: ["tool_calls"],
  };
  const calls = await session.decode({
    maxTokens: 200,
    temperature: 0,
    structuredOutput: {
      protocol: "llama:json_schema_tool_calls",
      payload: JSON.stringify(envelope),
    },
  }).collect();
  assert.equal(calls.toolCalls.length, 1, JSON.stringify(calls));
  assert.equal(calls.toolCalls[0].function?.name, "get_weather");
  assert.equal(calls.toolCalls[0].id, "call_1");
  assert.ok(["c", "f"].includes(JSON.parse(calls.toolCalls[0].function?.arguments ?? "").unit));

  for (
    const config of [
      { structuredOutput: { protocol: "openvino:json_schema_tool_calls" } },
      { parserProtocols: ["openvino:reasoning_parser"] },
      // modeld needs a reasoning format for its reasoning parser
      { parserProtocols: ["llama:common_chat_reasoning_parser"] },
    ]
  ) {
    await prime();
    const err = await session.decode({ maxTokens: 4, ...config }).collect().then(
      () => undefined,
      (e) => e,
    );
    assert.ok(err instanceof UnsupportedFeatureError, String(err));
  }
  await prime();
  const parsed = await session.decode({
    maxTokens: 6,
    parserProtocols: ["llama:common_chat_tool_parser", "llama:common_chat_reasoning_parser"],
    reasoningFormat: "deepseek",
  }).collect();
  assert.equal(parsed.toolCalls.length, 0, "gibberish holds no <tool_call> block");
});

Deno.test("importing the client (mod.ts) loads no engine module: node-llama-cpp is only in the daemon's graph", async () => {
  const graph = async (entry: string) => {
    const info = await denoInfo(entry);
    return JSON.stringify(info.npmPackages ?? {}) + JSON.stringify(info.modules ?? []);
  };
  assert.doesNotMatch(await graph("mod.ts"), /node-llama-cpp/);
  assert.doesNotMatch(await graph("testing.ts"), /node-llama-cpp/);
  assert.match(await graph("daemon.ts"), /node-llama-cpp/, "the check can see the engine");
});

Deno.test("the README's first command: the demo runs real inference through the CLI with a user's permissions", async () => {
  const model = await smolPath();
  const deno = Deno.execPath();
  const tmp = await tempRoot();
  const out = await new Deno.Command(deno, {
    args: [
      "run",
      "--no-prompt",
      `--allow-read=${tmp},.cache,node_modules,/usr`,
      `--allow-write=${tmp}`,
      "--allow-net=127.0.0.1",
      "--allow-ffi=node_modules",
      "--allow-env",
      "--allow-sys",
      `--allow-run=${deno}`,
      "lib/cli/demo.ts",
      "--model",
      model,
    ],
    env: { TMPDIR: tmp, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stdout + stderr);
  assert.match(stdout, /granted only --allow-read=\$ROOT --allow-net=127\.0\.0\.1/);
  assert.match(stdout, /backend: +llama/);
  const turn2 = /\[turn 2: reused (\d+) tokens/.exec(stderr + stdout);
  assert.ok(turn2 && Number(turn2[1]) > 0, "turn 2 reused the prefix");
  assert.match(stdout, /lease removed/);
  assert.match(
    stdout,
    /^# The daemon has 0 open sessions\.$/m,
    "no empty call log (was: served 0 calls ())",
  );
});

Deno.test("a window larger than the model's is refused as modeld does (context_overflow, load failed)", async () => {
  await using t = await tiny({ contextLength: 1024 });
  const { client, model } = t;
  const err = await client.openSession({ name: "tiny", type: "llama", path: model }, {
    config: { numCtx: 4096 },
  }).then(() => undefined, (e) => e);
  assert.ok(err instanceof ContextOverflowError, String(err));
  assert.match(err.message, /modeld failed to load model: .*num_ctx=4096 exceeds .*1024/);
  const st = await client.status();
  assert.equal(st.state, "Failed");
  // The window it does have works.
  await using ok = await client.openSession({ name: "tiny", type: "llama", path: model }, {
    config: { numCtx: 1024 },
  });
  assert.equal((await ok.explainContext()).numCtx, 1024);
});
