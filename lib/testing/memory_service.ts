/**
 * The in-memory reference semantics of a modeld session, after Go's
 * `transport.MemoryService`: a "token" is a Unicode code point of the text,
 * decoding yields `"x"` per token (or a scripted reply), and the warm-reuse,
 * drop, overflow and manifest rules are those of the daemon version imitated.
 *
 * - v0.36.0: warm iff a prefix is resident, the resident manifest is
 *   runtime-compatible with the new one and the stable byte hash is unchanged;
 *   overflows carry counts; PrefillSuffix checks the manifest.
 * - v0.32.3: warm iff the stable byte hash and the whole-manifest digest are
 *   unchanged (so a changed volatile segment makes it cold); overflows have no
 *   counts; PrefillSuffix does not check the manifest.
 *
 * Like the Go memory service, decoded tokens are not added to the resident
 * count (ExplainContext after "hello" + " world" and a 3-token decode reports
 * 11). A decode that would run past the window ends with an in-band
 * `context_overflow` chunk.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { PrefixInputSchema } from "../../gen/contenox/transport/v1/compute_pb.ts";
 * import { MemorySession } from "./memory_service.ts";
 *
 * const session = new MemorySession({ version: "v0.36.0", numCtx: 100 });
 * const st = await session.ensurePrefix(create(PrefixInputSchema, { text: "hello" }));
 * console.assert(st.prefilledTokens === 5);
 * ```
 *
 * @module
 */

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type ContextManifest,
  ContextManifestSchema,
  type ContextReportSchema,
  type DecodeConfig,
  type PrefixInput,
  type PrefixStatusSchema,
  type SessionSnapshot,
  type SessionSnapshotSchema,
  type SuffixInput,
  type SuffixStatusSchema,
} from "../../gen/contenox/transport/v1/compute_pb.ts";
import { manifestDigest } from "../context.ts";
import { compatibleRuntime, isZeroManifest } from "../daemon/manifest.ts";
import {
  type DaemonVersion,
  errorToken,
  type OverflowDetail,
  ServiceError,
} from "../daemon/sentinels.ts";

export type { DecodeChunkInit } from "../daemon/engine.ts";
import type { DecodeChunkInit } from "../daemon/engine.ts";

/**
 * A tool call in a scripted reply (`arguments` is a JSON-encoded string).
 *
 * @example
 * ```ts
 * import type { ToolCallInit } from "@contenox/modeldconn/testing";
 * const call: ToolCallInit = { id: "call_1", type: "function", function: { name: "lookup", arguments: '{"q":"x"}' } };
 * ```
 */
export interface ToolCallInit {
  /** The call id, e.g. `call_1`. */
  id?: string;
  /** Always `function`. */
  type?: string;
  /** The function called. */
  function?: { name?: string; arguments?: string };
}

/**
 * A scripted Decode reply. Each piece of `tokens` (or of `text`, split into
 * words with their leading whitespace) is one token and one chunk; `thinking`
 * pieces come first (HEAD only); `toolCalls` follow in one chunk (HEAD only);
 * `error` ends the stream with an in-band error chunk. `MaxTokens` caps
 * thinking plus text pieces (≤ 0 means 256, llama's default).
 *
 * @example
 * ```ts
 * import type { DecodeScript } from "@contenox/modeldconn/testing";
 * const script: DecodeScript = {
 *   thinking: ["Let me think."],
 *   tokens: ["The", " answer", " is", " 4."],
 *   error: { token: "session_fatal" },
 * };
 * ```
 */
export interface DecodeScript {
  /** Text pieces, one chunk each. */
  tokens?: string[];
  /** Text split into word pieces when `tokens` is absent. */
  text?: string;
  /** Reasoning pieces streamed before the text (dropped at v0.32.3). */
  thinking?: string[];
  /** Tool calls sent in one chunk after the text (dropped at v0.32.3). */
  toolCalls?: ToolCallInit[];
  /** Ends the stream with an error chunk: a sentinel token, its text, optional counts. */
  error?: { token: string; message?: string; overflow?: OverflowDetail };
}

/**
 * The Decode config a reply function sees (the `DecodeConfig` message, as received).
 *
 * @example
 * ```ts
 * import type { Reply } from "@contenox/modeldconn/testing";
 * const reply: Reply = ({ config }) => "word ".repeat(Math.max(1, config.maxTokens));
 * ```
 */
export interface ReplyDecodeConfig {
  /** `MaxTokens` (0 = none for the default reply, 256 for a scripted one). */
  maxTokens: number;
  /** `Temperature` (`undefined` = null). */
  temperature?: number;
  /** `TopP`. */
  topP?: number;
  /** `TopK`. */
  topK: number;
  /** `Seed`. */
  seed?: bigint;
  /** `ParserProtocols` (HEAD). */
  parserProtocols: string[];
  /** `ReasoningFormat` (HEAD). */
  reasoningFormat: string;
  /** `StructuredOutput` (HEAD). */
  structuredOutput?: { protocol: string; payload: string; toolName: string };
}

/**
 * What a reply function is told about the Decode call.
 *
 * @example
 * ```ts
 * import type { ReplyRequest } from "@contenox/modeldconn/testing";
 * const echo = (req: ReplyRequest) => `${req.handle}: ${req.prompt.suffix}`;
 * ```
 */
export interface ReplyRequest {
  /** The session handle. */
  handle: string;
  /** The Decode config as received. */
  config: ReplyDecodeConfig;
  /** The resident prompt: the last EnsurePrefix text and the suffix text since. */
  prompt: { prefix: string; suffix: string };
}

/**
 * A fixed reply text, or a function choosing the reply per call.
 *
 * @example
 * ```ts
 * import type { Reply } from "@contenox/modeldconn/testing";
 * const fixed: Reply = "Hello there!";
 * const scripted: Reply = ({ prompt }) => prompt.suffix.includes("?") ? "Yes." : { tokens: ["OK"] };
 * ```
 */
export type Reply = string | ((req: ReplyRequest) => string | DecodeScript);

/** Options of a {@linkcode MemorySession}. */
export interface MemorySessionOptions {
  /** The daemon version whose rules apply. */
  version: DaemonVersion;
  /** The window (`Config.NumCtx`; ≤ 0 = unbounded). */
  numCtx: number;
}

/** Options of one {@linkcode MemorySession.decode} call. */
export interface DecodeOptions {
  /** The handle, passed to `reply`. */
  handle: string;
  /** The scripted reply (default: `"x"` per token, `MaxTokens` tokens). */
  reply?: Reply;
  /** Delay before each chunk after the first, in milliseconds. */
  chunkDelayMs?: number;
  /** Ends the stream quietly when aborted (the client went away). */
  signal?: AbortSignal;
}

/**
 * Counts tokens the way the memory service does: one per code point.
 *
 * @param text The text.
 * @returns The number of code points.
 *
 * @example
 * ```ts
 * import { countTokens } from "@contenox/modeldconn/testing";
 * console.assert(countTokens("héllo 👋") === 7);
 * ```
 */
export function countTokens(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * Splits a reply into word pieces, each with its leading whitespace (trailing
 * whitespace becomes its own piece), so the pieces concatenate to `text`.
 *
 * @param text The reply.
 * @returns The pieces.
 *
 * @example
 * ```ts
 * import { splitReply } from "@contenox/modeldconn/testing";
 * console.assert(splitReply("Hello there, world").join("|") === "Hello| there,| world");
 * ```
 */
export function splitReply(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

/**
 * One in-memory session.
 *
 * @example
 * ```ts
 * import { MemorySession } from "./memory_service.ts";
 * const s = new MemorySession({ version: "v0.32.3", numCtx: 4 });
 * s.close();
 * console.assert(s.closed);
 * ```
 */
export class MemorySession {
  readonly #version: DaemonVersion;
  readonly #numCtx: number;
  #closed = false;
  #residentStableHash = "";
  #residentDigest = "";
  #manifest: ContextManifest = create(ContextManifestSchema);
  #prefixTokens = 0;
  #suffixTokens = 0;
  #prefixText = "";
  #suffixText = "";

  /**
   * @param options The version rules and window.
   */
  constructor(options: MemorySessionOptions) {
    this.#version = options.version;
    this.#numCtx = options.numCtx;
  }

  /** Whether {@linkcode MemorySession.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The window. */
  get numCtx(): number {
    return this.#numCtx;
  }

  #resident(): number {
    return this.#prefixTokens + this.#suffixTokens;
  }

  #available(): number {
    return this.#numCtx <= 0 ? 0 : this.#numCtx - this.#resident();
  }

  #overflow(detail: OverflowDetail): ServiceError {
    return this.#version === "v0.32.3"
      ? ServiceError.of("context_overflow")
      : ServiceError.overflow(detail);
  }

  /**
   * Makes the resident prefix equal to `prefix`, reusing it when warm.
   *
   * @param prefix The stable prefix.
   * @returns The PrefixStatus.
   * @throws {ServiceError} `session_closed`, `context_overflow`.
   *
   * @example
   * ```ts ignore
   * const st = await session.ensurePrefix(prefix);
   * ```
   */
  async ensurePrefix(prefix: PrefixInput): Promise<MessageInitShape<typeof PrefixStatusSchema>> {
    if (this.#closed) throw ServiceError.of("session_closed");
    const manifest = prefix.manifest ?? create(ContextManifestSchema);
    const want = countTokens(prefix.text);
    const digest = await manifestDigest(manifest);
    const stableHash = manifest.stableByteHash;
    const oldResident = this.#resident();
    if (this.#numCtx > 0 && want > this.#numCtx) {
      throw this.#overflow({
        stage: "prefix",
        residentTokens: 0,
        additionalTokens: want,
        numCtx: this.#numCtx,
      });
    }
    let reused = 0;
    let prefilled = 0;
    let dropped = 0;
    if (this.#version === "v0.32.3") {
      const warm = this.#residentStableHash === stableHash && this.#residentDigest === digest &&
        want > 0;
      if (warm) reused = want;
      else {
        dropped = this.#prefixTokens;
        prefilled = want;
      }
    } else {
      const warm = this.#prefixTokens > 0 && compatibleRuntime(this.#manifest, manifest) === "" &&
        this.#residentStableHash === stableHash && want > 0;
      if (warm) {
        reused = want;
        dropped = oldResident - reused;
      } else {
        dropped = oldResident;
        prefilled = want;
      }
    }
    this.#suffixTokens = 0;
    this.#suffixText = "";
    this.#prefixTokens = want;
    this.#prefixText = prefix.text;
    this.#residentStableHash = stableHash;
    this.#residentDigest = digest;
    this.#manifest = manifest;
    return {
      reusedTokens: reused,
      prefilledTokens: prefilled,
      droppedTokens: dropped,
      prefixTokens: this.#prefixTokens,
      residentTokens: this.#resident(),
      availableTokens: this.#available(),
      stableByteHash: stableHash,
      stableTokenHash: manifest.stableTokenHash,
      manifestDigest: digest,
    };
  }

  /**
   * Appends the volatile suffix.
   *
   * @param suffix The suffix.
   * @returns The SuffixStatus (`SuffixTokens` is cumulative since the last EnsurePrefix).
   * @throws {ServiceError} `session_closed`, `manifest_mismatch` (v0.36), `context_overflow`.
   *
   * @example
   * ```ts ignore
   * const st = await session.prefillSuffix(suffix);
   * ```
   */
  async prefillSuffix(suffix: SuffixInput): Promise<MessageInitShape<typeof SuffixStatusSchema>> {
    if (this.#closed) throw ServiceError.of("session_closed");
    const manifest = suffix.manifest ?? create(ContextManifestSchema);
    if (this.#version !== "v0.32.3") {
      const reason = compatibleRuntime(this.#manifest, manifest);
      if (reason !== "") throw ServiceError.of("manifest_mismatch", reason);
      if (
        !isZeroManifest(this.#manifest) && !isZeroManifest(manifest) &&
        this.#manifest.stableByteHash !== manifest.stableByteHash
      ) {
        throw ServiceError.of(
          "manifest_mismatch",
          "stable prefix changed between EnsurePrefix and PrefillSuffix",
        );
      }
    }
    const add = countTokens(suffix.text);
    if (this.#numCtx > 0 && this.#resident() + add > this.#numCtx) {
      throw this.#overflow({
        stage: "suffix",
        residentTokens: this.#resident(),
        additionalTokens: add,
        numCtx: this.#numCtx,
      });
    }
    this.#suffixTokens += add;
    this.#suffixText += suffix.text;
    return {
      suffixTokens: this.#suffixTokens,
      prefixTokens: this.#prefixTokens,
      residentTokens: this.#resident(),
      availableTokens: this.#available(),
      manifestDigest: await manifestDigest(manifest),
    };
  }

  /**
   * Streams the reply. Errors before the first chunk are thrown; errors during
   * generation are the last chunk (`error`, plus `error_token` and
   * `error_detail` at v0.36).
   *
   * @param config The Decode config.
   * @param options The handle, the reply script, pacing and cancellation.
   * @returns The chunks.
   * @throws {ServiceError} `session_closed`.
   *
   * @example
   * ```ts ignore
   * for await (const chunk of session.decode(config, { handle })) console.log(chunk.text);
   * ```
   */
  decode(config: DecodeConfig, options: DecodeOptions): AsyncIterable<DecodeChunkInit> {
    if (this.#closed) throw ServiceError.of("session_closed");
    const script = this.#script(config, options);
    return this.#stream(script, options);
  }

  #script(config: DecodeConfig, options: DecodeOptions): DecodeScript {
    const reply = options.reply;
    if (reply === undefined) {
      return { tokens: Array.from({ length: Math.max(0, config.maxTokens) }, () => "x") };
    }
    const chosen = typeof reply === "string" ? reply : reply({
      handle: options.handle,
      config,
      prompt: { prefix: this.#prefixText, suffix: this.#suffixText },
    });
    const script: DecodeScript = typeof chosen === "string" ? { text: chosen } : { ...chosen };
    const limit = config.maxTokens > 0 ? config.maxTokens : 256;
    const thinking = this.#version === "v0.32.3" ? [] : (script.thinking ?? []);
    const text = script.tokens ?? splitReply(script.text ?? "");
    const keptThinking = thinking.slice(0, limit);
    return {
      thinking: keptThinking,
      tokens: text.slice(0, Math.max(0, limit - keptThinking.length)),
      toolCalls: this.#version === "v0.32.3" ? undefined : script.toolCalls,
      error: script.error,
    };
  }

  async *#stream(script: DecodeScript, options: DecodeOptions): AsyncGenerator<DecodeChunkInit> {
    const pieces: DecodeChunkInit[] = [
      ...(script.thinking ?? []).map((t) => ({ thinking: t })),
      ...(script.tokens ?? []).map((t) => ({ text: t })),
    ];
    const resident = this.#resident();
    let sent = 0;
    for (const piece of pieces) {
      if (options.signal?.aborted) return;
      if (sent > 0 && options.chunkDelayMs) await sleep(options.chunkDelayMs, options.signal);
      if (options.signal?.aborted) return;
      if (this.#numCtx > 0 && resident + sent + 1 > this.#numCtx) {
        yield this.#errorChunk(this.#overflow({
          stage: "decode",
          residentTokens: resident + sent,
          additionalTokens: 1,
          numCtx: this.#numCtx,
        }));
        return;
      }
      sent++;
      yield piece;
    }
    if (script.toolCalls && script.toolCalls.length > 0) yield { toolCalls: script.toolCalls };
    if (script.error) {
      const { token, message, overflow } = script.error;
      const err = overflow && this.#version !== "v0.32.3"
        ? ServiceError.overflow(overflow)
        : token === ""
        ? new ServiceError("", message ?? "decode failed")
        : ServiceError.of(token, message);
      yield this.#errorChunk(err);
    }
  }

  #errorChunk(err: ServiceError): DecodeChunkInit {
    if (this.#version === "v0.32.3") return { error: err.message };
    const chunk: DecodeChunkInit = { error: err.message, errorToken: errorToken(err) };
    if (err.detail) chunk.errorDetail = { ...err.detail };
    return chunk;
  }

  /**
   * The observability snapshot (HEAD adds hot/planner windows and the manifest).
   *
   * @returns The ContextReport.
   *
   * @example
   * ```ts ignore
   * console.log(session.explain().residentTokens);
   * ```
   */
  explain(): MessageInitShape<typeof ContextReportSchema> {
    const report: MessageInitShape<typeof ContextReportSchema> = {
      residentTokens: this.#resident(),
      prefixTokens: this.#prefixTokens,
      numCtx: this.#numCtx,
      availableTokens: this.#available(),
      stableByteHash: this.#residentStableHash,
      manifestDigest: this.#residentDigest,
      closed: this.#closed,
    };
    if (this.#version !== "v0.32.3") {
      report.hotContextTokens = this.#numCtx;
      report.plannerEffectiveContext = this.#numCtx;
      report.manifest = this.#manifest;
    }
    return report;
  }

  /**
   * Counts and manifest, like the Go memory service (no state blob).
   *
   * @returns The SessionSnapshot.
   * @throws {ServiceError} `session_closed`.
   *
   * @example
   * ```ts ignore
   * const snap = session.snapshot();
   * ```
   */
  snapshot(): MessageInitShape<typeof SessionSnapshotSchema> {
    if (this.#closed) throw ServiceError.of("session_closed");
    return {
      residentTokens: this.#resident(),
      prefixTokens: this.#prefixTokens,
      numCtx: this.#numCtx,
      manifest: this.#manifest,
      stableText: this.#prefixText,
    };
  }

  /**
   * Restores counts and manifest from a snapshot.
   *
   * @param snap The snapshot.
   * @throws {ServiceError} `session_closed`; `context_overflow` for a snapshot that does not fit.
   *
   * @example
   * ```ts ignore
   * await session.restore(snap);
   * ```
   */
  async restore(snap: SessionSnapshot): Promise<void> {
    if (this.#closed) throw ServiceError.of("session_closed");
    if (snap.numCtx > 0 && this.#numCtx > 0 && snap.numCtx !== this.#numCtx) {
      throw ServiceError.of("context_overflow");
    }
    if (
      snap.residentTokens < 0 || snap.prefixTokens < 0 || snap.prefixTokens > snap.residentTokens
    ) {
      throw ServiceError.of("context_overflow");
    }
    if (this.#numCtx > 0 && snap.residentTokens > this.#numCtx) {
      throw ServiceError.of("context_overflow");
    }
    const manifest = snap.manifest ?? create(ContextManifestSchema);
    this.#prefixTokens = snap.prefixTokens;
    this.#suffixTokens = Math.max(0, snap.residentTokens - snap.prefixTokens);
    this.#manifest = manifest;
    this.#residentStableHash = manifest.stableByteHash;
    this.#residentDigest = await manifestDigest(manifest);
    this.#prefixText = snap.stableText;
    this.#suffixText = "";
  }

  /**
   * Marks the session closed; later operations fail with `session_closed`.
   *
   * @example
   * ```ts ignore
   * session.close();
   * ```
   */
  close(): void {
    this.#closed = true;
  }
}

export { compatibleRuntime, isZeroManifest };

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
