/**
 * Engine side by side: this package's daemon + client (llama.cpp engine,
 * gRPC over 127.0.0.1, both in one process) against node-llama-cpp used
 * directly in-process, on the same GGUF model, threads, window, batch,
 * sampler and ChatML prompt tokens.
 *
 * Run from the repository root:
 *
 *   mkdir -p .cache/tmp && deno run --allow-read=.,/tmp/exp,/usr/lib/x86_64-linux-gnu \
 *     --allow-write=.cache --allow-net=127.0.0.1 --allow-ffi --allow-run --allow-env \
 *     --allow-sys bench/engine_side_by_side.ts [--rounds 5] [--turns 3] [--max-tokens 128] [--explore]
 *
 * (`/usr/lib/x86_64-linux-gnu`: node-llama-cpp looks for glibc there before it
 * uses its prebuilt binary; without it, `NoBinaryFoundError`.)
 *
 * Model: `.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf` if present, else
 * `/tmp/exp/SmolLM2-135M-Instruct.Q4_1.gguf` (or `--model PATH`).
 *
 * Method: the parent spawns this script as children, `--side=inproc` and
 * `--side=daemon` alternately, `--rounds` of each. A child loads the model
 * once and runs `--turns` turns of one conversation, then one turn of a new
 * conversation; the first turn is reported as cold (model load, full prompt
 * prefill, fresh processes), the rest of the first conversation's as warm,
 * and the last as a new conversation in running processes (nothing reused
 * but the template's opening tokens). A turn is: the stable prefix (system
 * message; kept in the KV cache across turns, as modeld's EnsurePrefix does),
 * the suffix (user message plus the generation prompt), then a greedy decode
 * of up to `--max-tokens` tokens that stops at end of generation. The daemon
 * child serves a fresh data root under `.cache/tmp` with `serve()`, keeps it
 * up, and opens a fresh session per turn through `ModeldClient`. The
 * in-process child does what the daemon's engine does: it tokenizes the
 * prefix and the prompt text inside the prefill's clock,
 * `evaluateWithoutGeneratingNewTokens` for the tokens not already resident,
 * then erases the last prompt token and `evaluate([last], sampler)` for
 * fresh logits. It renders no template (the daemon renders twice).
 *
 * In both children `LlamaContextSequence.prototype.evaluate` is wrapped
 * (at run time, in the bench process; lib/ is unchanged) to time every
 * `next()` of the token generator: that is the time spent inside
 * node-llama-cpp (evaluation, sampling, its batch scheduling) per token, so
 * the rest of the per-token interval seen by the client is the daemon's and
 * the wire's share.
 *
 * Each child reports its memory and CPU at the end: `Deno.memoryUsage().rss`,
 * VmHWM from `/proc/<pid>/status` and utime+stime from `/proc/<pid>/stat`.
 * Deno refuses reads of `/proc/self` without `-A`, so the child reads them
 * with `cat` (hence `--allow-run`).
 *
 * `--explore` instead runs in-process children with node-llama-cpp option
 * variants (flash attention, batch size, thread spec, sampler, token
 * predictor) and prints their warm decode speed.
 *
 * The Markdown report goes to stdout, progress to stderr.
 *
 * @module
 */

import {
  getLlama,
  InputLookupTokenPredictor,
  type Llama,
  type LlamaContext,
  type LlamaContextOptions,
  LlamaContextSequence,
  type LlamaModel,
  type SequenceEvaluateOptions,
  type Token,
} from "node-llama-cpp";
import { serve } from "../daemon.ts";
import { CPU_LLAMA } from "../lib/daemon/llama/engine.ts";
import { readLines } from "../lib/cli/io.ts";
import { buildContext, ModeldClient } from "../mod.ts";

/** Threads: the machine's cores (2 on the reference machine). */
const THREADS = Number(flag("threads", String(navigator.hardwareConcurrency)));
/** The window, in tokens. */
const NUM_CTX = 2048;
/** The engine's batch (modeld's default). */
const BATCH = 512;
/** A system + user conversation; the user asks for a long answer so turns run to `--max-tokens`. */
interface Conversation {
  system: string;
  user: string;
}
/** The conversation of the cold and warm turns (the system message is the stable prefix). */
const CHAT: Conversation = {
  system: "You are a helpful assistant.",
  user: "Write a long story about a dragon.",
};
/**
 * The last turn's: a new conversation in running processes, so nothing is
 * reused but the template's opening tokens (the same on both sides).
 */
const NEW_CHAT: Conversation = {
  system: "You are a poet who writes in plain words.",
  user: "Write a long poem about the sea at night.",
};
/**
 * A new conversation with a long prompt (about 400 tokens): the daemon's
 * cost per prompt is fixed (two RPCs, two template renders), so its share
 * falls as prompts grow.
 */
const LONG_CHAT: Conversation = {
  system: "You are a careful reader who answers at length.",
  user: [
    "Read this passage, then retell it as a long story.",
    "The lighthouse stood on a rock at the end of a narrow causeway that the sea covered twice a day.",
    "Its keeper, an old man called Tomas, had lived there for thirty years, and in all that time he",
    "had never once let the lamp go out. Every evening he climbed the one hundred and twelve steps,",
    "trimmed the wick, polished the great lens with a soft cloth, and wound the clockwork that turned",
    "the light. Every morning he wrote in his log the weather, the ships he had seen, and the birds",
    "that had rested on the gallery rail. In winter the storms came from the west, and the waves",
    "broke so high against the tower that spray rattled on the lantern glass a hundred feet above",
    "the rock. In summer the sea was calm and green, and children from the village walked across the",
    "causeway at low tide to bring him bread, cheese and letters. He kept the letters in a tin box",
    "under his bed, and on quiet nights he read them again by the light of a small oil lamp. One",
    "autumn a young woman arrived with a bag of tools and a letter from the harbour board. The light",
    "was to be made electric, the letter said, and the keeper was to teach her everything he knew",
    "before the work began. Tomas read the letter twice, folded it carefully, and put it in the tin",
    "box with the others. Then he made tea, and they sat together at the small table by the window",
    "while the tide came in over the causeway and the first lights of the fishing boats appeared on",
    "the darkening water. He showed her how to read the clouds, how to hear a change in the wind",
    "before it came, and how to keep the lens clean with nothing but water, vinegar and patience.",
  ].join(" "),
};
/** The conversations, by index (the interleaved child names them by index). */
const CHATS = [CHAT, NEW_CHAT, LONG_CHAT];
/** The stable prefix as the GGUF's ChatML template renders it alone. */
const prefixText = (c: Conversation) => `<|im_start|>system\n${c.system}<|im_end|>\n`;
/** The whole prompt with the generation prompt, as the daemon renders it. */
const promptText = (c: Conversation) =>
  `${prefixText(c)}<|im_start|>user\n${c.user}<|im_end|>\n<|im_start|>assistant\n`;
/** Turn `i` of `turns`: the cold turn and the warm ones on {@linkcode CHAT}, then one on {@linkcode NEW_CHAT}. */
const conversationOf = (i: number, turns: number) => i === turns ? NEW_CHAT : CHAT;
/** What the daemon's sampler gets for `temperature: 0`: greedy alone (top-k/p/min-p change nothing). */
const SAMPLER: SequenceEvaluateOptions = { temperature: 0, seed: 0 };
/** The permissions children run with (the parent's, scoped). */
const CHILD_PERMISSIONS = [
  "--allow-read=.,/tmp/exp,/usr/lib/x86_64-linux-gnu",
  "--allow-write=.cache",
  "--allow-net=127.0.0.1",
  "--allow-ffi",
  "--allow-run",
  "--allow-env",
  "--allow-sys",
];

/** One turn's measurements (milliseconds unless named otherwise). */
interface Turn {
  /** Prompt tokens actually evaluated by the prefill (prefix part + suffix part). */
  promptTokens: number;
  /** Prefill wall time (EnsurePrefix + PrefillSuffix for the daemon). */
  prefillMs: number;
  /** Of that, time inside node-llama-cpp's `evaluateWithoutGeneratingNewTokens`. */
  prefillEvalMs: number;
  /** Decode call start to the first non-empty chunk. */
  ttftMs: number;
  /** Tokens generated (the daemon's: resident growth from ExplainContext). */
  tokens: number;
  /** Chunks received (the daemon merges partial UTF-8, so chunks ≤ tokens). */
  chunks: number;
  /** First chunk to last chunk. */
  afterFirstMs: number;
  /** Decode call start to the end of the stream. */
  decodeWallMs: number;
  /** Time inside node-llama-cpp's token generator `next()`, summed over the decode. */
  evalMs: number;
  /** `next()` calls timed during the decode. */
  evalSteps: number;
  /** The generated text (to check both sides generate the same). */
  text: string;
}

/** What a child prints as its last stdout line. */
interface ChildResult {
  side: "inproc" | "daemon";
  variant: string;
  /** Model load + context (in-process) or the first OpenSession (daemon). */
  loadMs: number;
  turns: Turn[];
  rssBytes: number;
  vmHwmKb: number;
  cpuMs: number;
  wallMs: number;
}

/** An in-process configuration tried by `--explore`. */
interface Variant {
  context: Partial<LlamaContextOptions>;
  sampler: SequenceEvaluateOptions;
  predictor?: boolean;
  note: string;
}

/** In-process variants; `engine` is exactly what the daemon's engine uses. */
const VARIANTS: Record<string, Variant> = {
  engine: {
    context: {},
    sampler: SAMPLER,
    note: "as the daemon: batch 512, flashAttention auto, threads 2, greedy alone",
  },
  "modeld-sampler": {
    context: {},
    sampler: { temperature: 0, topK: 40, topP: 0.9, minP: 0.05, seed: 0 },
    note: "greedy after modeld's top-k 40 / top-p 0.9 / min-p 0.05 (the same tokens)",
  },
  "threads-min": {
    context: { threads: { ideal: THREADS, min: THREADS } },
    sampler: SAMPLER,
    note: `threads: {ideal: ${THREADS}, min: ${THREADS}}`,
  },
  "fa-true": { context: { flashAttention: true }, sampler: SAMPLER, note: "flashAttention: true" },
  "fa-false": {
    context: { flashAttention: false },
    sampler: SAMPLER,
    note: "flashAttention: false",
  },
  "batch-64": { context: { batchSize: 64 }, sampler: SAMPLER, note: "batchSize: 64" },
  "batch-2048": { context: { batchSize: 2048 }, sampler: SAMPLER, note: "batchSize: 2048" },
  "threads-ideal": {
    context: { threads: { ideal: THREADS } },
    sampler: SAMPLER,
    note: `threads: {ideal: ${THREADS}} (no min)`,
  },
  "input-lookup": {
    context: {},
    sampler: SAMPLER,
    predictor: true,
    note: "tokenPredictor: InputLookupTokenPredictor",
  },
};

/** Daemon configurations tried by `--explore` (always the engine's options). */
const DAEMON_VARIANTS: Record<string, string> = {
  daemon: "daemon + client in one process (the measured configuration)",
  "daemon-remote-client": "daemon in one process, client in another",
};

/**
 * Per-process totals of the wrapped `evaluate` generators (`ms`, `steps`)
 * and of `evaluateWithoutGeneratingNewTokens` while `prefilling` (`prefillMs`:
 * from the start of a turn's prefill to its decode's first `evaluate`).
 */
const evalStats = { ms: 0, steps: 0, prefillMs: 0, prefilling: false };

/**
 * Wraps `LlamaContextSequence.prototype.evaluate` so every `next()` of the
 * returned generator adds its duration to {@linkcode evalStats}, and
 * `evaluateWithoutGeneratingNewTokens` likewise. Runs in the bench process
 * only; the library code is untouched.
 */
function instrumentEvaluate(): void {
  const proto = LlamaContextSequence.prototype;
  const prefill = proto.evaluateWithoutGeneratingNewTokens;
  proto.evaluateWithoutGeneratingNewTokens = async function (
    this: LlamaContextSequence,
    ...args: Parameters<LlamaContextSequence["evaluateWithoutGeneratingNewTokens"]>
  ) {
    const t = performance.now();
    try {
      return await prefill.apply(this, args);
    } finally {
      if (evalStats.prefilling) evalStats.prefillMs += performance.now() - t;
    }
  };
  const original = proto.evaluate;
  proto.evaluate = function (
    this: LlamaContextSequence,
    ...args: Parameters<LlamaContextSequence["evaluate"]>
  ) {
    evalStats.prefilling = false;
    const gen = original.apply(this, args);
    const wrapped = {
      async next(value?: void | Token | Token[]) {
        const t = performance.now();
        try {
          return await gen.next(value);
        } finally {
          evalStats.ms += performance.now() - t;
          evalStats.steps++;
        }
      },
      return: (value: void) => gen.return(value),
      throw: (err: unknown) => gen.throw(err),
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    return wrapped as unknown as ReturnType<LlamaContextSequence["evaluate"]>;
  };
}

/**
 * Reads a named flag (`--name value` or `--name=value`).
 *
 * @param name The flag without dashes.
 * @param fallback The value when absent.
 * @returns The value.
 */
function flag(name: string, fallback: string): string {
  const args = Deno.args;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}` && i + 1 < args.length) return args[i + 1];
    if (args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
  }
  return fallback;
}

/**
 * The model path: `--model`, else the cached copy, else /tmp/exp.
 *
 * @returns An existing GGUF path.
 */
function modelPath(): string {
  const given = flag("model", "");
  if (given) return given;
  const cached = `${Deno.cwd()}/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf`;
  try {
    Deno.statSync(cached);
    return cached;
  } catch {
    return "/tmp/exp/SmolLM2-135M-Instruct.Q4_1.gguf";
  }
}

/**
 * Memory and CPU of this process from /proc, read through `cat` (Deno
 * refuses direct /proc/self reads without -A).
 *
 * @returns VmHWM in KiB and utime+stime in ms.
 */
async function procStats(): Promise<{ vmHwmKb: number; cpuMs: number }> {
  const run = async (cmd: string, args: string[]) =>
    new TextDecoder().decode(
      (await new Deno.Command(cmd, { args, stderr: "null" }).output()).stdout,
    );
  const status = await run("cat", [`/proc/${Deno.pid}/status`]);
  const stat = await run("cat", [`/proc/${Deno.pid}/stat`]);
  const tck = Number((await run("getconf", ["CLK_TCK"])).trim()) || 100;
  const hwm = /VmHWM:\s+(\d+)/.exec(status);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { vmHwmKb: hwm ? Number(hwm[1]) : 0, cpuMs: (ticks * 1000) / tck };
}

/**
 * node-llama-cpp driven directly with the daemon engine's calls: one model,
 * one context, one sequence, whose tokens persist across turns.
 */
class Inproc implements AsyncDisposable {
  /** Model load + context, ms. */
  readonly loadMs: number;
  readonly #llama: Llama;
  readonly #model: LlamaModel;
  readonly #context: LlamaContext;
  readonly #seq: LlamaContextSequence;
  readonly #sampler: SequenceEvaluateOptions;
  #resident: Token[] = [];

  private constructor(
    parts: { llama: Llama; model: LlamaModel; context: LlamaContext; seq: LlamaContextSequence },
    sampler: SequenceEvaluateOptions,
    loadMs: number,
  ) {
    this.#llama = parts.llama;
    this.#model = parts.model;
    this.#context = parts.context;
    this.#seq = parts.seq;
    this.#sampler = sampler;
    this.loadMs = loadMs;
  }

  /**
   * Loads the model and creates the context.
   *
   * @param variant A key of {@linkcode VARIANTS}.
   * @returns The loaded side.
   */
  static async open(variant: string): Promise<Inproc> {
    const v = VARIANTS[variant];
    if (!v) throw new Error(`unknown variant ${variant}`);
    const t0 = performance.now();
    const llama = await getLlama(CPU_LLAMA);
    const model = await llama.loadModel({ modelPath: modelPath(), gpuLayers: 0, useMmap: true });
    const context = await model.createContext({
      contextSize: NUM_CTX,
      batchSize: BATCH,
      sequences: 1,
      threads: THREADS,
      flashAttention: "auto",
      ...v.context,
    });
    const seq = context.getSequence({
      contextShift: {
        strategy: () => {
          throw new Error("context shift");
        },
      },
      tokenPredictor: v.predictor ? new InputLookupTokenPredictor() : undefined,
    });
    return new Inproc({ llama, model, context, seq }, v.sampler, performance.now() - t0);
  }

  /**
   * One turn: prefill what the sequence lacks, then a greedy decode.
   *
   * @param chat The conversation.
   * @param maxTokens Decode limit.
   * @returns The turn's measurements.
   */
  async turn(chat: Conversation, maxTokens: number): Promise<Turn> {
    const model = this.#model;
    const seq = this.#seq;
    // Prefill: tokenize the prompt (as any program with a text prompt must), keep the
    // resident prefix (as EnsurePrefix does), evaluate the rest.
    const p0 = performance.now();
    const prefillEval0 = evalStats.prefillMs;
    evalStats.prefilling = true;
    const prefix = model.tokenize(prefixText(chat), true);
    const full = model.tokenize(promptText(chat), true);
    let keep = 0;
    while (keep < prefix.length && this.#resident[keep] === prefix[keep]) keep++;
    if (seq.nextTokenIndex > keep) {
      await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
    }
    const resident = this.#resident.slice(0, keep);
    const todo = full.slice(keep);
    for (let j = 0; j < todo.length; j += BATCH) {
      await seq.evaluateWithoutGeneratingNewTokens(todo.slice(j, j + BATCH));
    }
    resident.push(...todo);
    const prefillMs = performance.now() - p0;
    const prefillEvalMs = evalStats.prefillMs - prefillEval0;
    // Decode: re-evaluate the last prompt token for fresh logits, then sample.
    const evalMs0 = evalStats.ms;
    const evalSteps0 = evalStats.steps;
    const d0 = performance.now();
    const last = resident[resident.length - 1];
    await seq.eraseContextTokenRanges([{ start: resident.length - 1, end: seq.nextTokenIndex }]);
    const it = seq.evaluate([last], this.#sampler);
    let tokens = 0;
    let chunks = 0;
    let first = 0;
    let lastAt = 0;
    const generated: Token[] = [];
    for (;;) {
      const step = await it.next();
      if (step.done || model.isEogToken(step.value)) break;
      tokens++;
      generated.push(step.value);
      const piece = model.detokenize([step.value], true);
      if (piece) {
        chunks++;
        lastAt = performance.now();
        if (first === 0) first = lastAt;
      }
      if (tokens >= maxTokens) break;
    }
    await it.return();
    const end = performance.now();
    this.#resident = seq.contextTokens.slice();
    return {
      promptTokens: todo.length,
      prefillMs,
      prefillEvalMs,
      ttftMs: first - d0,
      tokens,
      chunks,
      afterFirstMs: lastAt - first,
      decodeWallMs: end - d0,
      evalMs: evalStats.ms - evalMs0,
      evalSteps: evalStats.steps - evalSteps0,
      text: model.detokenize(generated),
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#context.dispose();
    await this.#model.dispose();
    await this.#llama.dispose();
  }
}

/**
 * The in-process child: node-llama-cpp directly, the daemon engine's calls.
 *
 * @param variant A key of {@linkcode VARIANTS}.
 * @param turns Turns of the first conversation (one on a new conversation follows).
 * @param maxTokens Decode limit.
 * @returns The child's result (without memory/CPU).
 */
async function runInproc(
  variant: string,
  turns: number,
  maxTokens: number,
): Promise<Omit<ChildResult, "rssBytes" | "vmHwmKb" | "cpuMs" | "wallMs">> {
  await using side = await Inproc.open(variant);
  const out: Turn[] = [];
  for (let i = 0; i <= turns; i++) out.push(await side.turn(conversationOf(i, turns), maxTokens));
  return { side: "inproc", variant, loadMs: side.loadMs, turns: out };
}

/**
 * One turn through the daemon: a fresh session, EnsurePrefix, PrefillSuffix,
 * a greedy Decode.
 *
 * @param client The client.
 * @param chat The conversation.
 * @param maxTokens Decode limit.
 * @returns The OpenSession's time and the turn's measurements.
 */
async function clientTurn(
  client: ModeldClient,
  chat: Conversation,
  maxTokens: number,
): Promise<{ openMs: number; turn: Turn }> {
  const ctx = await buildContext([
    { role: "system", content: chat.system },
    { role: "user", content: chat.user },
  ]);
  const o0 = performance.now();
  await using session = await client.openSession(
    { name: "smol", type: "llama", path: modelPath() },
    { config: { numCtx: NUM_CTX, numThreads: THREADS } },
  );
  const openMs = performance.now() - o0;
  const p0 = performance.now();
  const prefillEval0 = evalStats.prefillMs;
  evalStats.prefilling = true;
  const ps = await session.ensurePrefix(ctx.prefix);
  const ss = await session.prefillSuffix(ctx.suffix);
  const prefillMs = performance.now() - p0;
  const prefillEvalMs = evalStats.prefillMs - prefillEval0;
  const evalMs0 = evalStats.ms;
  const evalSteps0 = evalStats.steps;
  const d0 = performance.now();
  let chunks = 0;
  let first = 0;
  let lastAt = 0;
  let text = "";
  for await (const d of session.decode({ maxTokens, temperature: 0 })) {
    if (!d.text) continue;
    chunks++;
    text += d.text;
    lastAt = performance.now();
    if (first === 0) first = lastAt;
  }
  const end = performance.now();
  const evalMs = evalStats.ms - evalMs0;
  const evalSteps = evalStats.steps - evalSteps0;
  const report = await session.explainContext();
  return {
    openMs,
    turn: {
      promptTokens: ps.prefilledTokens + ss.suffixTokens,
      prefillMs,
      prefillEvalMs,
      ttftMs: first - d0,
      tokens: report.residentTokens - ss.residentTokens,
      chunks,
      afterFirstMs: lastAt - first,
      decodeWallMs: end - d0,
      evalMs,
      evalSteps,
      text,
    },
  };
}

/**
 * Client turns against the daemon on `dataRoot`: a fresh session per turn.
 *
 * @param dataRoot The daemon's data root.
 * @param turns Turns of the first conversation (one on a new conversation follows).
 * @param maxTokens Decode limit.
 * @returns The first OpenSession's time and the turns.
 */
async function clientTurns(
  dataRoot: string,
  turns: number,
  maxTokens: number,
): Promise<{ loadMs: number; turns: Turn[] }> {
  const out: Turn[] = [];
  let loadMs = 0;
  await using client = new ModeldClient({ dataRoot });
  for (let i = 0; i <= turns; i++) {
    const { openMs, turn } = await clientTurn(client, conversationOf(i, turns), maxTokens);
    if (i === 0) loadMs = openMs;
    out.push(turn);
  }
  return { loadMs, turns: out };
}

/**
 * The daemon child: `serve()` in this process, kept up for all turns, and
 * the client either in this process too (the measured configuration) or,
 * with `remote`, in a grandchild process (`--side=client`; `--explore` only),
 * whose turns are reported. With `remote` the evaluate timings of this
 * process cover the grandchild's decodes.
 *
 * @param turns Turns of the first conversation (one on a new conversation follows).
 * @param maxTokens Decode limit.
 * @param remote Run the client in a separate process.
 * @returns The child's result (without memory/CPU).
 */
async function runDaemon(
  turns: number,
  maxTokens: number,
  remote: boolean,
): Promise<Omit<ChildResult, "rssBytes" | "vmHwmKb" | "cpuMs" | "wallMs">> {
  return await withDaemon(async (dataRoot) => {
    if (!remote) {
      const r = await clientTurns(dataRoot, turns, maxTokens);
      return { side: "daemon", variant: "daemon", ...r };
    }
    const steps0 = evalStats.steps;
    const ms0 = evalStats.ms;
    const r = await spawn(["--side=client", `--data-root=${dataRoot}`]);
    // The grandchild's decodes ran here: spread this process's evaluate time over its turns.
    const steps = evalStats.steps - steps0;
    const ms = evalStats.ms - ms0;
    for (const t of r.turns) {
      t.evalSteps = Math.round(steps / r.turns.length);
      t.evalMs = ms / r.turns.length;
    }
    return { side: "daemon", variant: "daemon-remote-client", loadMs: r.loadMs, turns: r.turns };
  });
}

/**
 * Runs `fn` with the daemon (`serve()`) up on a fresh data root under
 * `.cache/tmp`, removed afterwards.
 *
 * @param fn What to do with the daemon's data root.
 * @returns What `fn` returns.
 */
async function withDaemon<T>(fn: (dataRoot: string) => Promise<T>): Promise<T> {
  const dataRoot = `${Deno.cwd()}/.cache/tmp/engine-bench-${Deno.pid}`;
  await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  try {
    await using _daemon = await serve({ dataRoot, threads: THREADS, idleTtlMs: 0 });
    return await fn(dataRoot);
  } finally {
    await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
  }
}

/** What an interleaved child prints: both sides' warm turns, taken in turn. */
interface InterleavedResult {
  variant: "local-client" | "remote-client";
  inproc: Turn[];
  daemon: Turn[];
}

/**
 * The interleaved child: node-llama-cpp in-process and the daemon (`serve()`)
 * in one process, one warm turn on each in turn (which goes first alternates),
 * so both sides share the process, its memory layout and the machine's
 * moment: from one process to the next, decode speed on this VM moves by up
 * to a third. The client runs in this process or, with `remote`, in a
 * grandchild (`--side=client-stdio`) that runs one turn per line it reads.
 * Turn 1 of each side is dropped (cold).
 *
 * @param turns Turns per side, the cold one included.
 * @param maxTokens Decode limit.
 * @param remote Run the client in a separate process.
 * @returns Both sides' warm turns.
 */
async function runInterleaved(
  turns: number,
  maxTokens: number,
  remote: boolean,
): Promise<InterleavedResult> {
  await using inproc = await Inproc.open("engine");
  const inprocTurn = (chat: Conversation) => inproc.turn(chat, maxTokens);
  return await withDaemon(async (dataRoot) => {
    const out: InterleavedResult = {
      variant: remote ? "remote-client" : "local-client",
      inproc: [],
      daemon: [],
    };
    if (!remote) {
      await using client = new ModeldClient({ dataRoot });
      const daemonTurn = async (chat: Conversation) =>
        (await clientTurn(client, chat, maxTokens)).turn;
      await interleave(turns, inprocTurn, daemonTurn, out);
      return out;
    }
    const grandchild = new Deno.Command(Deno.execPath(), {
      args: childArgs(["--side=client-stdio", `--data-root=${dataRoot}`]),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const writer = grandchild.stdin.getWriter();
    const lines = readLines(grandchild.stdout);
    const daemonTurn = async (chat: Conversation) => {
      // The grandchild's decode runs in this process: time it here.
      const ms0 = evalStats.ms;
      const steps0 = evalStats.steps;
      const prefill0 = evalStats.prefillMs;
      evalStats.prefilling = true;
      await writer.write(new TextEncoder().encode(`${CHATS.indexOf(chat)}\n`));
      const { value, done } = await lines.next();
      if (done) throw new Error("the client grandchild ended early");
      const turn = JSON.parse(value) as Turn;
      return {
        ...turn,
        prefillEvalMs: evalStats.prefillMs - prefill0,
        evalMs: evalStats.ms - ms0,
        evalSteps: evalStats.steps - steps0,
      };
    };
    try {
      await interleave(turns, inprocTurn, daemonTurn, out);
    } finally {
      await writer.close();
      await grandchild.status;
    }
    return out;
  });
}

/**
 * Runs `turns` turns on each side, alternating which goes first, and keeps
 * all but each side's first. The turns cycle through {@linkcode CHATS}, so
 * every prompt is a new conversation.
 *
 * @param turns Turns per side.
 * @param inproc One in-process turn.
 * @param daemon One turn through the daemon.
 * @param out Where the turns go.
 */
async function interleave(
  turns: number,
  inproc: (chat: Conversation) => Promise<Turn>,
  daemon: (chat: Conversation) => Promise<Turn>,
  out: InterleavedResult,
): Promise<void> {
  for (let i = 0; i < turns; i++) {
    const chat = CHATS[i % CHATS.length];
    const order = i % 4 < 2 ? ["inproc", "daemon"] as const : ["daemon", "inproc"] as const;
    for (const side of order) {
      const t = await (side === "inproc" ? inproc(chat) : daemon(chat));
      if (i > 0) out[side].push(t);
    }
  }
}

/**
 * The client grandchild of an interleaved child: one daemon turn per line
 * read from stdin (the index of its conversation in {@linkcode CHATS}), each
 * printed as a JSON line.
 *
 * @param dataRoot The daemon's data root.
 * @param maxTokens Decode limit.
 */
async function clientStdio(dataRoot: string, maxTokens: number): Promise<void> {
  await using client = new ModeldClient({ dataRoot });
  for await (const line of readLines(Deno.stdin.readable)) {
    const { turn } = await clientTurn(client, CHATS[Number(line)], maxTokens);
    console.log(JSON.stringify(turn));
  }
}

/**
 * Child entry: runs one side and prints its JSON result as the last line.
 *
 * @param side `inproc` or `daemon`.
 */
async function child(side: string): Promise<void> {
  instrumentEvaluate();
  const w0 = performance.now();
  const turns = Number(flag("turns", "3"));
  const maxTokens = Number(flag("max-tokens", "128"));
  if (side === "client-stdio") return await clientStdio(flag("data-root", ""), maxTokens);
  if (side === "interleaved") {
    const remote = flag("variant", "") === "remote-client";
    console.log(JSON.stringify(await runInterleaved(turns, maxTokens, remote)));
    return;
  }
  let result: Omit<ChildResult, "rssBytes" | "vmHwmKb" | "cpuMs" | "wallMs">;
  if (side === "client") {
    const r = await clientTurns(flag("data-root", ""), turns, maxTokens);
    result = { side: "daemon", variant: "client", ...r };
  } else if (side === "daemon") {
    result = await runDaemon(turns, maxTokens, flag("variant", "") === "remote-client");
  } else {
    result = await runInproc(flag("variant", "engine"), turns, maxTokens);
  }
  const wallMs = performance.now() - w0;
  const rssBytes = Deno.memoryUsage().rss;
  const proc = await procStats();
  console.log(JSON.stringify({ ...result, rssBytes, ...proc, wallMs } satisfies ChildResult));
}

/**
 * Spawns one child and parses its result.
 *
 * @param args Extra child arguments (`--side=…`, …).
 * @returns The child's result.
 */
async function spawn<T = ChildResult>(args: string[]): Promise<T> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: childArgs(args),
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  const last = lines[lines.length - 1] ?? "";
  if (!out.success || !last.startsWith("{")) {
    throw new Error(`child ${args.join(" ")} failed (code ${out.code}): ${lines.join("\n")}`);
  }
  return JSON.parse(last) as T;
}

/**
 * A child's `deno run` arguments: the children's permissions, this script,
 * `args`, and this process's `--turns`, `--max-tokens`, `--model` and
 * `--threads` (flags read first win, so `args` may set them too).
 *
 * @param args The child's own flags.
 * @returns The arguments.
 */
function childArgs(args: string[]): string[] {
  const passthrough = ["turns", "max-tokens", "model", "threads"].flatMap((n) => {
    const v = flag(n, "");
    return v ? [`--${n}=${v}`] : [];
  });
  return ["run", ...CHILD_PERMISSIONS, new URL(import.meta.url).pathname, ...args, ...passthrough];
}

/**
 * The median of numbers.
 *
 * @param xs Values.
 * @returns The median (NaN when empty).
 */
function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Formats a number with a precision that suits its size.
 *
 * @param x The number.
 * @returns Its text.
 */
function fmt(x: number): string {
  if (!Number.isFinite(x)) return "–";
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/**
 * "median (min–max)" of values.
 *
 * @param xs Values.
 * @returns The cell text.
 */
function cell(xs: number[]): string {
  if (xs.length === 0) return "–";
  return `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
}

/** A table row: label, per-child values of each side, target text. */
interface Row {
  label: string;
  pick: (r: ChildResult) => number[];
  target?: string;
  /** How to judge the target from the medians. */
  judge?: (inproc: number, daemon: number) => boolean;
}

/** Warm turns (all on {@linkcode CHAT} but the first) of a child. */
const warm = (r: ChildResult) => r.turns.slice(1, -1);
/** The turn on {@linkcode NEW_CHAT}, in running processes. */
const fresh = (r: ChildResult) => r.turns[r.turns.length - 1];
/** Decode tokens per second after the first chunk (chunks after the first / time). */
const decodeRate = (t: Turn) => ((t.chunks - 1) * 1000) / t.afterFirstMs;
/** Tokens per second over the whole decode call (modeld-comparable). */
const wallRate = (t: Turn) => (t.tokens * 1000) / t.decodeWallMs;
/** Client-side milliseconds per token after the first. */
const msPerToken = (t: Turn) => t.afterFirstMs / Math.max(1, t.chunks - 1);
/** Prompt tokens evaluated per second of prefill. */
const promptRate = (t: Turn) => (t.promptTokens * 1000) / t.prefillMs;
/** Prefill time outside node-llama-cpp's evaluation (tokenizing; the daemon's RPCs and renders). */
const prefillOverhead = (t: Turn) => t.prefillMs - t.prefillEvalMs;
/** Milliseconds per `next()` inside node-llama-cpp. */
const evalPerStep = (t: Turn) => t.evalMs / Math.max(1, t.evalSteps);

/** The rows of the main table. */
const ROWS: Row[] = [
  {
    label: "Model load + context, ms (daemon: first OpenSession)",
    pick: (r) => [r.loadMs],
  },
  {
    label: "Cold prefill, full prompt, ms",
    pick: (r) => [r.turns[0].prefillMs],
    target: "Go: 75–150",
  },
  { label: "Cold prompt tokens", pick: (r) => [r.turns[0].promptTokens] },
  {
    label: "Cold prompt throughput, tokens/s",
    pick: (r) => [promptRate(r.turns[0])],
    target: "≥ 0.9×",
    judge: (i, d) => d / i >= 0.9,
  },
  {
    label: "New conversation in running processes: prefill, ms",
    pick: (r) => [fresh(r).prefillMs],
  },
  { label: "New conversation prompt tokens", pick: (r) => [fresh(r).promptTokens] },
  {
    label: "New conversation prompt throughput, tokens/s",
    pick: (r) => [promptRate(fresh(r))],
    target: "≥ 0.9×",
    judge: (i, d) => d / i >= 0.9,
  },
  {
    label: "Warm prefill (prefix reused), ms",
    pick: (r) => warm(r).map((t) => t.prefillMs),
  },
  { label: "Warm prompt tokens", pick: (r) => warm(r).map((t) => t.promptTokens) },
  {
    label: "Warm prompt throughput, tokens/s",
    pick: (r) => warm(r).map((t) => (t.promptTokens * 1000) / t.prefillMs),
    target: "≥ 0.9×",
    judge: (i, d) => d / i >= 0.9,
  },
  {
    label: "TTFT, cold turn, ms",
    pick: (r) => [r.turns[0].ttftMs],
    target: "Go: 25–45",
  },
  {
    label: "TTFT, warm turns, ms",
    pick: (r) => warm(r).map((t) => t.ttftMs),
    target: "< +10 ms",
    judge: (i, d) => d - i < 10,
  },
  {
    label: "Tokens generated per turn",
    pick: (r) => r.turns.map((t) => t.tokens),
  },
  {
    label: "Decode tokens/s (chunks after the first / time after first chunk)",
    pick: (r) => r.turns.map(decodeRate),
    target: "≥ 0.9×",
    judge: (i, d) => d / i >= 0.9,
  },
  {
    label: "Decode tokens/s, modeld-comparable (tokens / decode call wall time)",
    pick: (r) => r.turns.map(wallRate),
    target: "Go: 69–78",
  },
  {
    label: "ms per token seen by the caller (after the first)",
    pick: (r) => r.turns.map(msPerToken),
  },
  {
    label: "ms per token inside node-llama-cpp `next()`",
    pick: (r) => r.turns.map(evalPerStep),
  },
  {
    label: "Turn wall time, warm, ms (prefill + decode)",
    pick: (r) => warm(r).map((t) => t.prefillMs + t.decodeWallMs),
  },
  {
    label: "RSS at end, MiB (`Deno.memoryUsage().rss`)",
    pick: (r) => [r.rssBytes / 2 ** 20],
    target: "≤ 1.2×",
    judge: (i, d) => d / i <= 1.2,
  },
  {
    label: "Peak RSS (VmHWM), MiB",
    pick: (r) => [r.vmHwmKb / 1024],
    target: "≤ 1.2×",
    judge: (i, d) => d / i <= 1.2,
  },
  {
    label: "CPU time per child (utime+stime), s",
    pick: (r) => [r.cpuMs / 1000],
  },
  {
    label: "CPU ms per generated token (whole child)",
    pick: (r) => [r.cpuMs / r.turns.reduce((a, t) => a + t.tokens, 0)],
  },
];

/**
 * Renders the main table.
 *
 * @param inproc In-process children.
 * @param daemon Daemon children.
 * @returns Markdown.
 */
function table(inproc: ChildResult[], daemon: ChildResult[]): string {
  const lines = [
    "| Metric | In-process median (min–max) | Daemon + client median (min–max) | Daemon ÷ in-process | Target / bar | Met |",
    "| --- | ---: | ---: | ---: | --- | :-: |",
  ];
  for (const row of ROWS) {
    const a = inproc.flatMap(row.pick);
    const b = daemon.flatMap(row.pick);
    const ma = median(a);
    const mb = median(b);
    let ratio = fmt(mb / ma);
    if (row.label.startsWith("TTFT")) ratio += ` (${mb - ma >= 0 ? "+" : ""}${fmt(mb - ma)} ms)`;
    const met = row.judge ? (row.judge(ma, mb) ? "yes" : "no") : "";
    lines.push(
      `| ${row.label} | ${cell(a)} | ${cell(b)} | ${ratio} | ${row.target ?? ""} | ${met} |`,
    );
  }
  return lines.join("\n");
}

/**
 * Parent entry: interleaves children, then prints the table.
 */
async function main(): Promise<void> {
  const rounds = Number(flag("rounds", "5"));
  if (Deno.args.includes("--explore")) return await explore(rounds);
  const inproc: ChildResult[] = [];
  const daemon: ChildResult[] = [];
  const remote: ChildResult[] = [];
  const load0 = Deno.loadavg()[0];
  for (let i = 0; i < rounds; i++) {
    for (const side of ["inproc", "daemon", "remote"] as const) {
      // "remote": the client in its own process, as the CLI and scripts use the daemon.
      const r = await spawn(
        side === "remote" ? ["--side=daemon", "--variant=remote-client"] : [`--side=${side}`],
      );
      (side === "inproc" ? inproc : side === "daemon" ? daemon : remote).push(r);
      const t = r.turns.at(-1)!;
      console.error(
        `round ${i + 1}/${rounds} ${side}: load ${fmt(r.loadMs)} ms, prefill ${
          fmt(r.turns[0].prefillMs)
        } ms (cold), ttft ${fmt(t.ttftMs)} ms, decode ${
          fmt(decodeRate(t))
        } tok/s, ${t.tokens} tokens, hwm ${fmt(r.vmHwmKb / 1024)} MiB`,
      );
    }
  }
  const texts = inproc[0].turns.map((t) => t.text);
  const same = [...inproc, ...daemon, ...remote].every((r) =>
    r.turns.every((t, i) => t.text === texts[i])
  );
  const turns = inproc[0].turns.length - 1;
  console.log(
    `Model ${
      modelPath().split("/").pop()
    }, threads ${THREADS}, numCtx ${NUM_CTX}, batch ${BATCH}, ` +
      `greedy, max ${
        flag("max-tokens", "128")
      } tokens; ${rounds} rounds × ${turns} turns per side ` +
      `(turn 1 = cold) + 1 new conversation; same generated text on both sides: ${
        same ? "yes" : "NO"
      }; ` +
      `load average ${fmt(load0)} → ${fmt(Deno.loadavg()[0])}.\n`,
  );
  console.log("Client in its own process (as the CLI and user scripts run):\n");
  console.log(table(inproc, remote));
  console.log("\nClient in the daemon's process (gRPC both ends on the same 2 cores):\n");
  console.log(table(inproc, daemon));
  const overhead = median(daemon.flatMap((r) => r.turns.map(msPerToken))) -
    median(daemon.flatMap((r) => r.turns.map(evalPerStep)));
  const inOverhead = median(inproc.flatMap((r) => r.turns.map(msPerToken))) -
    median(inproc.flatMap((r) => r.turns.map(evalPerStep)));
  console.log(
    `\nPer-token time outside node-llama-cpp's next(): daemon + client ${fmt(overhead)} ms, ` +
      `in-process ${fmt(inOverhead)} ms.`,
  );
  const interleavedTurns = Number(flag("interleaved-turns", "19"));
  if (interleavedTurns > 1) {
    const results: InterleavedResult[] = [];
    for (const variant of ["remote-client", "local-client"]) {
      console.error(`interleaved ${variant}: ${interleavedTurns} turns per side…`);
      results.push(
        await spawn<InterleavedResult>([
          "--side=interleaved",
          `--variant=${variant}`,
          `--turns=${interleavedTurns}`,
        ]),
      );
    }
    console.log(
      `\nOne process, turns interleaved (${interleavedTurns - 1} turns per side, the first ` +
        "dropped): node-llama-cpp in-process and the daemon in the same process, one turn on " +
        "each in turn; the turns cycle through three conversations (two short prompts, one of " +
        "about 400 tokens), so every prompt is a new conversation (nothing reused but the " +
        "template's opening tokens).\n",
    );
    console.log(interleavedTable(results));
  }
}

/** Turns with a short prompt (about 30 tokens evaluated). */
const short = (t: Turn) => t.promptTokens < 100;
/** Rows of the interleaved table: a label, which turns, and a per-turn value. */
const INTERLEAVED_ROWS: [string, (t: Turn) => boolean, (t: Turn) => number][] = [
  ["Decode tokens/s (chunks after the first / time after first chunk)", () => true, decodeRate],
  ["ms per token inside node-llama-cpp `next()`", () => true, evalPerStep],
  ["TTFT, ms", () => true, (t) => t.ttftMs],
  ["Short new prompt: tokens evaluated", short, (t) => t.promptTokens],
  ["Short new prompt: prefill, ms", short, (t) => t.prefillMs],
  ["Short new prompt: prompt throughput, tokens/s", short, promptRate],
  ["Short new prompt: prefill outside llama.cpp's evaluation, ms", short, prefillOverhead],
  ["Long new prompt: tokens evaluated", (t) => !short(t), (t) => t.promptTokens],
  ["Long new prompt: prompt throughput, tokens/s", (t) => !short(t), promptRate],
  [
    "Long new prompt: prefill outside llama.cpp's evaluation, ms",
    (t) => !short(t),
    prefillOverhead,
  ],
];

/**
 * Renders the interleaved runs: one block of rows per client layout.
 *
 * @param results One interleaved child per layout.
 * @returns Markdown.
 */
function interleavedTable(results: InterleavedResult[]): string {
  const lines = [
    "| Client | Metric | In-process median (min–max) | Daemon + client median (min–max) | Daemon ÷ in-process |",
    "| --- | --- | ---: | ---: | ---: |",
  ];
  for (const r of results) {
    const who = r.variant === "remote-client" ? "own process" : "daemon's process";
    for (const [label, which, f] of INTERLEAVED_ROWS) {
      const a = r.inproc.filter(which).map(f);
      const b = r.daemon.filter(which).map(f);
      lines.push(
        `| ${who} | ${label} | ${cell(a)} | ${cell(b)} | ${fmt(median(b) / median(a))} |`,
      );
    }
  }
  return lines.join("\n");
}

/**
 * `--explore`: in-process option variants, interleaved, warm decode medians.
 *
 * @param rounds Children per variant.
 */
async function explore(rounds: number): Promise<void> {
  const names = [...Object.keys(VARIANTS), ...Object.keys(DAEMON_VARIANTS)];
  const notes: Record<string, string> = { ...DAEMON_VARIANTS };
  for (const [n, v] of Object.entries(VARIANTS)) notes[n] = v.note;
  const results = new Map<string, ChildResult[]>(names.map((n) => [n, []]));
  for (let i = 0; i < rounds; i++) {
    for (const n of names) {
      const r = await spawn(
        n in DAEMON_VARIANTS
          ? ["--side=daemon", `--variant=${n === "daemon-remote-client" ? "remote-client" : ""}`]
          : ["--side=inproc", `--variant=${n}`],
      );
      results.get(n)!.push(r);
      console.error(`round ${i + 1}/${rounds} ${n}: ${fmt(decodeRate(r.turns.at(-1)!))} tok/s`);
    }
  }
  const base = median(results.get("engine")!.flatMap((r) => warm(r).map(decodeRate)));
  console.log(
    "| Variant | Decode tokens/s, warm | ÷ engine | ms/token in `next()` | Tokens | Cold prefill ms | TTFT warm ms |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const n of names) {
    const rs = results.get(n)!;
    const rates = rs.flatMap((r) => warm(r).map(decodeRate));
    console.log(
      `| ${notes[n]} | ${cell(rates)} | ${fmt(median(rates) / base)} | ${
        cell(rs.flatMap((r) => warm(r).map(evalPerStep)))
      } | ${fmt(median(rs.flatMap((r) => warm(r).map((t) => t.tokens))))} | ${
        cell(rs.map((r) => r.turns[0].prefillMs))
      } | ${cell(rs.flatMap((r) => warm(r).map((t) => t.ttftMs)))} |`,
    );
  }
}

if (import.meta.main) {
  const side = flag("side", "");
  if (side) await child(side);
  else await main();
}
