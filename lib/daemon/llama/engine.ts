/**
 * The llama.cpp engine (node-llama-cpp, prebuilt CPU binary, never built or
 * downloaded at run time): loads GGUF models into {@linkcode LlamaSession}s,
 * describes them from their GGUF header, and embeds. Only the daemon imports
 * this file; the client never does.
 *
 * @example
 * ```ts ignore
 * import { LlamaEngine } from "./engine.ts";
 * await using engine = await LlamaEngine.create({ threads: 2, scratchDir: "/tmp" });
 * ```
 *
 * @module
 */

import {
  getLlama,
  type Llama,
  type LlamaEmbeddingContext,
  LlamaLogLevel,
  type LlamaModel,
  type LlamaOptions,
  readGgufFileInfo,
} from "node-llama-cpp";
import type { Engine, EngineSession, ModelInfoInit, ModelSpec } from "../engine.ts";
import { ServiceError } from "../sentinels.ts";
import { ChatTemplate } from "./prompt.ts";
import { LlamaSession } from "./session.ts";

/** modeld's window when `NumCtx` ≤ 0 (llamasession), capped at the model's own. */
const DEFAULT_NUM_CTX = 8192;
/** modeld's batch when `NumBatch` ≤ 0. */
const DEFAULT_BATCH = 512;

/**
 * Options of {@linkcode LlamaEngine.create}.
 *
 * @example
 * ```ts ignore
 * const options: LlamaEngineOptions = { threads: 2, scratchDir: "/data/modeld-tmp" };
 * ```
 */
export interface LlamaEngineOptions {
  /** Threads when a model's `NumThreads` is ≤ 0 (default: the machine's cores). */
  threads?: number;
  /** Where snapshot states are staged (a directory the daemon may write). */
  scratchDir: string;
}

interface GgufFacts {
  architecture: string;
  contextLength: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  keyLength: number;
  embeddingLength: number;
  slidingWindow: number;
  chatTemplate: string;
  bos: string;
  eos: string;
  addBos: boolean;
  fileBytes: number;
}

/**
 * How the engine loads llama.cpp: the prebuilt CPU binary only, never a
 * source build or a download at run time, quiet. The engine benchmark loads
 * its in-process baseline with the same options.
 *
 * @example
 * ```ts ignore
 * import { getLlama } from "node-llama-cpp";
 * const llama = await getLlama(CPU_LLAMA);
 * ```
 */
export const CPU_LLAMA: LlamaOptions = {
  gpu: false,
  build: "never",
  usePrebuiltBinaries: true,
  progressLogs: false,
  logLevel: LlamaLogLevel.error,
  logger: () => {},
};

/**
 * The llama.cpp {@linkcode Engine}.
 *
 * @example
 * ```ts ignore
 * const engine = await LlamaEngine.create({ scratchDir: "/tmp" });
 * const session = await engine.load(spec);
 * ```
 */
export class LlamaEngine implements Engine {
  readonly #llama: Llama;
  readonly #threads: number;
  readonly #scratchDir: string;
  readonly #embedders = new Map<string, { model: LlamaModel; context: LlamaEmbeddingContext }>();

  private constructor(llama: Llama, options: LlamaEngineOptions) {
    this.#llama = llama;
    this.#threads = options.threads && options.threads > 0 ? options.threads : defaultThreads();
    this.#scratchDir = options.scratchDir;
  }

  /**
   * Loads the llama.cpp binding (CPU, prebuilt; fails rather than build).
   *
   * @param options Threads and scratch directory.
   * @returns The engine.
   *
   * @example
   * ```ts ignore
   * const engine = await LlamaEngine.create({ threads: 2, scratchDir: "/tmp" });
   * ```
   */
  static async create(options: LlamaEngineOptions): Promise<LlamaEngine> {
    const llama = await getLlama(CPU_LLAMA);
    return new LlamaEngine(llama, options);
  }

  /** The default thread count. */
  get threads(): number {
    return this.#threads;
  }

  /** A regular file that starts with the GGUF magic; returns its size. */
  async #checkGguf(path: string): Promise<number> {
    if (path === "") {
      throw new ServiceError("", "llama model KV profile: model path is required");
    }
    let fileBytes: number;
    try {
      const st = await Deno.stat(path);
      if (!st.isFile) throw new Error("not a regular file");
      fileBytes = st.size;
      const head = new Uint8Array(4);
      using f = await Deno.open(path);
      const n = await f.read(head);
      if (n !== 4 || new TextDecoder().decode(head) !== "GGUF") {
        throw new Error("not a GGUF file (no GGUF magic at offset 0)");
      }
    } catch (err) {
      const why = err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
      throw new ServiceError(
        "",
        `llama model KV profile: inspect GGUF metadata ${JSON.stringify(path)}: ${why}`,
      );
    }
    return fileBytes;
  }

  /** The GGUF header facts the engine uses (reads the whole metadata section). */
  async #facts(path: string): Promise<GgufFacts> {
    const fileBytes = await this.#checkGguf(path);
    let info;
    try {
      info = await readGgufFileInfo(path, { readTensorInfo: false, logWarnings: false });
    } catch (err) {
      throw new ServiceError(
        "",
        `llama model KV profile: inspect GGUF metadata ${JSON.stringify(path)}: ${
          (err as Error).message
        }`,
      );
    }
    // deno-lint-ignore no-explicit-any
    const meta = info.metadata as any;
    const arch: string = meta.general?.architecture ?? "";
    const a = meta[arch] ?? {};
    const tok = meta.tokenizer?.ggml ?? {};
    const tokens: string[] = tok.tokens ?? [];
    const pick = (id: unknown) => typeof id === "number" && tokens[id] ? tokens[id] : "";
    return {
      architecture: arch,
      contextLength: Number(a.context_length ?? 0),
      blockCount: Number(a.block_count ?? 0),
      headCount: Number(a.attention?.head_count ?? 0),
      headCountKv: Number(a.attention?.head_count_kv ?? 0),
      keyLength: Number(a.attention?.key_length ?? 0),
      embeddingLength: Number(a.embedding_length ?? 0),
      slidingWindow: Number(a.attention?.sliding_window ?? 0),
      chatTemplate: meta.tokenizer?.chat_template ?? "",
      bos: pick(tok.bos_token_id),
      eos: pick(tok.eos_token_id),
      addBos: tok.add_bos_token ?? false,
      fileBytes,
    };
  }

  /**
   * Loads a model and its context (one sequence, `NumCtx` tokens).
   *
   * @param spec The model.
   * @param signal Cancels the load.
   * @returns The session.
   * @throws {ServiceError} A missing / non-GGUF file, a window larger than the model's.
   *
   * @example
   * ```ts ignore
   * const session = await engine.load(spec);
   * ```
   */
  async load(spec: ModelSpec, signal?: AbortSignal): Promise<EngineSession> {
    const facts = await this.#facts(spec.path);
    if (spec.adapters.length > 0) {
      throw ServiceError.of(
        "unsupported_feature",
        "lora adapters are not supported by this engine",
      );
    }
    const max = facts.contextLength > 0 ? facts.contextLength : DEFAULT_NUM_CTX;
    let numCtx = spec.config.numCtx > 0 ? spec.config.numCtx : Math.min(DEFAULT_NUM_CTX, max);
    if (numCtx > max) {
      throw new ServiceError(
        "context_overflow",
        `exceeded the session context window: requested num_ctx=${numCtx} exceeds modeld effective context=${max} (model_context_length)`,
      );
    }
    numCtx -= numCtx % 2; // modeld rounds an odd window down
    let model: LlamaModel;
    try {
      model = await this.#llama.loadModel({
        modelPath: spec.path,
        gpuLayers: 0,
        useMmap: true,
        loadSignal: signal,
      });
    } catch (err) {
      throw new ServiceError(
        "",
        `llamasession: load model ${JSON.stringify(spec.path)}: ${(err as Error).message}`,
      );
    }
    try {
      const threads = spec.config.numThreads > 0 ? spec.config.numThreads : this.#threads;
      const context = await model.createContext({
        contextSize: numCtx,
        batchSize: Math.min(
          spec.config.numBatch > 0 ? spec.config.numBatch : DEFAULT_BATCH,
          numCtx,
        ),
        sequences: 1,
        threads,
        flashAttention: spec.config.flashAttn ? true : "auto",
        createSignal: signal,
      });
      const session = new LlamaSession({
        model,
        context,
        template: new ChatTemplate(facts.chatTemplate, facts),
        numCtx,
        addBos: facts.addBos && !spec.config.disableBos,
        scratchDir: this.#scratchDir,
        reasoningFormat: spec.config.reasoningFormat,
      });
      session.primePromptPath();
      return session;
    } catch (err) {
      await model.dispose();
      throw new ServiceError(
        "",
        `llamasession: new context: ${(err as Error).message}`,
      );
    }
  }

  /**
   * The ModelInfo from the GGUF header and the host's memory.
   *
   * @param spec The model.
   * @returns The ModelInfo.
   *
   * @example
   * ```ts ignore
   * console.log((await engine.describe(spec)).modelMaxContext);
   * ```
   */
  async describe(spec: ModelSpec): Promise<ModelInfoInit> {
    const f = await this.#facts(spec.path);
    const headDim = f.keyLength || (f.headCount > 0 ? f.embeddingLength / f.headCount : 0);
    const kvHeads = f.headCountKv || f.headCount;
    const kvPerToken = BigInt(Math.round(f.blockCount * 2 * kvHeads * headDim * 2));
    const mem = systemMemory();
    const usable = mem.free * 0.9;
    const memoryTokens = kvPerToken > 0n
      ? Math.max(0, Math.floor((usable - f.fileBytes) / Number(kvPerToken)))
      : 0;
    const request = spec.config.numCtx > 0 ? spec.config.numCtx : 0;
    const limits = [f.contextLength, memoryTokens].filter((n) => n > 0);
    if (request > 0) limits.push(request);
    const effective = limits.length > 0 ? Math.min(...limits) : 0;
    const template = new ChatTemplate(f.chatTemplate, f);
    const thinking = template.supportsThinking();
    const info: ModelInfoInit = {
      modelMaxContext: f.contextLength,
      effectiveContext: effective,
      memoryContextTokens: memoryTokens,
      hotContextTokens: effective,
      plannerEffectiveContext: effective,
      kvBytesPerToken: kvPerToken,
      freeBytes: BigInt(Math.round(mem.free)),
      weightsBytes: BigInt(f.fileBytes),
      usableBytes: BigInt(Math.round(usable)),
      requiredBytes: BigInt(f.fileBytes) + kvPerToken * BigInt(request || effective),
      deviceKind: "system",
      deviceId: "ram",
      deviceTotalBytes: BigInt(Math.round(mem.total)),
      chatTemplateSupportsToolCalls: template.supportsTools(),
      chatTemplateSupportsThinking: thinking,
      chatTemplateReasoningFormat: thinking ? "auto" : "",
    };
    if (request > 0 && f.contextLength > 0 && request > f.contextLength) {
      info.clamped = true;
      info.reason = "request_exceeds_model_context";
    }
    if (f.slidingWindow > 0) {
      info.sparseAttention = true;
      info.slidingWindowAttentionTokens = f.slidingWindow;
    }
    return info;
  }

  /**
   * A one-shot embedding: last-token pooling, L2-normalized, as modeld does.
   * The embedding model stays loaded for the next call (modeld keeps it too).
   *
   * @param spec The model.
   * @param text The text.
   * @param signal Cancels before the embedding runs.
   * @returns The vector.
   *
   * @example
   * ```ts ignore
   * const v = await engine.embed(spec, "hello");
   * ```
   */
  async embed(spec: ModelSpec, text: string, signal?: AbortSignal): Promise<number[]> {
    const limit = spec.config.numCtx <= 0 ? 4096 : Math.min(spec.config.numCtx, 32768);
    let entry = this.#embedders.get(spec.path);
    if (entry) {
      await this.#checkGguf(spec.path); // still there, still a model, as modeld checks each call
    } else {
      await this.#facts(spec.path);
      let model: LlamaModel;
      try {
        model = await this.#llama.loadModel({ modelPath: spec.path, gpuLayers: 0, useMmap: true });
      } catch (err) {
        throw new ServiceError(
          "",
          `llama embed: load model ${JSON.stringify(spec.path)}: ${(err as Error).message}`,
        );
      }
      const context = await model.createEmbeddingContext({
        contextSize: Math.min(limit, model.trainContextSize || limit),
        threads: this.#threads,
      });
      entry = { model, context };
      this.#embedders.set(spec.path, entry);
    }
    const n = entry.model.tokenize(text, true).length;
    if (n > limit) {
      throw new ServiceError(
        "",
        `llama embed: input is ${n} tokens but the limit is ${limit}; raise context length or chunk the input`,
      );
    }
    if (n === 0) throw new ServiceError("", "llama embed: decode: invalid decode batch");
    if (signal?.aborted) throw ServiceError.of("context_canceled");
    const { vector } = await entry.context.getEmbeddingFor(text);
    let norm = 0;
    for (const x of vector) {
      if (!Number.isFinite(x)) {
        throw new ServiceError("", "llama embed: embedding contains NaN or Inf");
      }
      norm += x * x;
    }
    const scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
    return vector.map((x) => Math.fround(x * scale));
  }

  /**
   * Frees the embedding models and the binding.
   *
   * @example
   * ```ts ignore
   * await engine.close();
   * ```
   */
  async close(): Promise<void> {
    for (const { model, context } of this.#embedders.values()) {
      await context.dispose();
      await model.dispose();
    }
    this.#embedders.clear();
    await this.#llama.dispose();
  }

  /** Same as {@linkcode LlamaEngine.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The machine's cores: with 2 cores, 4 threads made decode ~500x slower in a trial. */
export function defaultThreads(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}

function systemMemory(): { total: number; free: number } {
  try {
    const m = Deno.systemMemoryInfo();
    return { total: m.total, free: m.available };
  } catch {
    return { total: 0, free: 0 }; // no --allow-sys=systemMemoryInfo: memory facts unknown
  }
}
