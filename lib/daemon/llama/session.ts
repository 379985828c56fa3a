/**
 * One llama.cpp context behind the slot, with modeld v0.36.0's llama session
 * semantics: the stable prefix is rendered alone with the model's template
 * and kept as the resident token tape's head (longest common token prefix
 * reused, the rest dropped); PrefillSuffix renders the whole conversation with
 * the generation prompt and evaluates only what differs; Decode re-evaluates
 * the last resident token for fresh logits, samples (modeld's defaults:
 * temperature 0.8, top-k 40, top-p 0.9, min-p 0.05, seed 0) and streams until
 * end of generation, `MaxTokens` or a full window. A full window is reported
 * as `context_overflow`, never silently shifted.
 *
 * @example
 * ```ts ignore
 * const session = await LlamaSession.open(model, spec, { threads: 2 });
 * await session.ensurePrefix(prefix);
 * ```
 *
 * @module
 */

import {
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaGrammar,
  LlamaGrammarEvaluationState,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import { create } from "@bufbuild/protobuf";
import {
  type ContextManifest,
  ContextManifestSchema,
  type DecodeConfig,
  type PrefixInput,
  type SessionSnapshot,
  type SuffixInput,
} from "../../../gen/contenox/transport/v1/compute_pb.ts";
import type {
  ContextReportInit,
  DecodeChunkInit,
  DecodeContext,
  EngineSession,
  PrefixStatusInit,
  SessionSnapshotInit,
  SuffixStatusInit,
} from "../engine.ts";
import { compatibleRuntime } from "../manifest.ts";
import { errorToken, ServiceError } from "../sentinels.ts";
import { ChatOutputParser, REASONING_PARSER, TOOL_PARSER } from "./chat_parser.ts";
import { parseToolCallEnvelope, type StructuredMode, structuredMode } from "./structured.ts";
import {
  type ChatMessage,
  type ChatTemplate,
  commonPrefix,
  hashTokenIds,
  manifestDigestNow,
  stableMessages,
  volatileMessages,
} from "./prompt.ts";

/** modeld's sampling defaults (llamasession Decode). */
const DEFAULTS = { temperature: 0.8, topK: 40, topP: 0.9, minP: 0.05, maxTokens: 256 } as const;

/**
 * What a session needs from its engine.
 *
 * @example
 * ```ts ignore
 * const init: SessionInit = { model, context, template, numCtx: 2048, addBos: false, scratchDir: "/tmp" };
 * ```
 */
export interface SessionInit {
  /** The loaded model. */
  model: LlamaModel;
  /** Its context (one sequence). */
  context: LlamaContext;
  /** The model's chat template. */
  template: ChatTemplate;
  /** The window, in tokens. */
  numCtx: number;
  /** Whether prompts start with BOS (vocab flag and not `DisableBOS`). */
  addBos: boolean;
  /** Where state files are staged for Snapshot / Restore. */
  scratchDir: string;
  /** `Config.ReasoningFormat`: the reasoning parser's default. */
  reasoningFormat: string;
}

/**
 * A modeld llama session over a node-llama-cpp context sequence.
 *
 * @example
 * ```ts ignore
 * const session = new LlamaSession(init);
 * for await (const c of session.decode(config, { handle, signal })) console.log(c.text);
 * ```
 */
export class LlamaSession implements EngineSession {
  readonly #model: LlamaModel;
  readonly #context: LlamaContext;
  readonly #seq: LlamaContextSequence;
  readonly #template: ChatTemplate;
  readonly #numCtx: number;
  readonly #addBos: boolean;
  readonly #scratchDir: string;
  readonly #reasoningFormat: string;
  /** The last rendered prompt opened a `<think>` block for the reply. */
  #startsInThinking = false;
  #closed = false;
  #fatal = "";
  /** The session's tokens, in order: in the KV cache, but for those from `#pendingFrom` on. */
  #resident: Token[] = [];
  /**
   * Where the tokens EnsurePrefix added but did not evaluate begin. The
   * prefix is evaluated with the suffix in one batch (or before anything else
   * that needs the cache): two small batches cost llama.cpp nearly twice one
   * (11 + 17 tokens took 20 + 28 ms, 28 at once 33 ms). The counts on the
   * wire do not change.
   */
  #pendingFrom: number | undefined;
  #prefixLen = 0;
  #stableText = "";
  #prefixText = "";
  #tools = "";
  #stableMsgs: ChatMessage[] = [];
  #manifest: ContextManifest = create(ContextManifestSchema);
  #counters = { prefillCalls: 0, prefillTokens: 0, decodeCalls: 0 };

  /** @param init Model, context, template and window. */
  constructor(init: SessionInit) {
    this.#model = init.model;
    this.#context = init.context;
    this.#template = init.template;
    this.#numCtx = init.numCtx;
    this.#addBos = init.addBos;
    this.#scratchDir = init.scratchDir;
    this.#reasoningFormat = init.reasoningFormat;
    this.#seq = init.context.getSequence({
      // Never drop tokens behind the caller's back: the window is checked
      // before every evaluation, so a shift request is a bug worth surfacing.
      contextShift: {
        strategy: () => {
          throw new ServiceError("", "llamasession: context shift requested; refused");
        },
      },
    });
  }

  /**
   * Runs the prompt path once on a throwaway conversation, evaluating
   * nothing: a fresh daemon's first template render, tokenization and
   * hashes cost 3–4 ms of JIT warm-up, which otherwise land on the first
   * prompt. A template that refuses the conversation is left for the real
   * one to report.
   *
   * @example
   * ```ts ignore
   * session.primePromptPath(); // at load, before the handle is returned
   * ```
   */
  primePromptPath(): void {
    const msgs: ChatMessage[] = [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: "Hello." },
    ];
    try {
      const prefix = this.#template.render(msgs.slice(0, 1), { addGenerationPrompt: false });
      const prompt = this.#template.render(msgs, { addGenerationPrompt: true });
      const a = this.#tokenize(prefix, this.#addBos);
      const b = this.#tokenize(prompt, this.#addBos);
      commonPrefix(a, b);
      hashTokenIds(a);
      manifestDigestNow({ backend: "llama", stableByteHash: hashTokenIds(b) });
    } catch { /* the template's own error reaches the caller that sends such a conversation */ }
  }

  /** The window, in tokens. */
  get numCtx(): number {
    return this.#numCtx;
  }

  #check(signal?: AbortSignal): void {
    if (this.#fatal) {
      throw ServiceError.of("session_fatal", this.#fatal);
    }
    if (this.#closed) throw ServiceError.of("session_closed");
    if (signal?.aborted) throw ServiceError.of("context_canceled");
  }

  #tokenize(text: string, addBos: boolean): Token[] {
    const toks = this.#model.tokenize(text, true);
    const bos = this.#model.tokens.bos;
    if (addBos && bos !== null && toks[0] !== bos) return [bos, ...toks];
    return toks;
  }

  /**
   * Drops resident tokens from `keep` on. The KV cache keeps them until
   * something else is evaluated there: the next prefill reuses whatever of
   * that tail it would evaluate again (a chat's previous turns), so only new
   * tokens cost time. The counts on the wire stay modeld's.
   */
  #truncate(keep: number): void {
    if (keep >= this.#resident.length) return;
    this.#resident = this.#resident.slice(0, keep);
    if (this.#pendingFrom !== undefined && this.#pendingFrom >= keep) this.#pendingFrom = undefined;
    if (this.#prefixLen > keep) {
      this.#prefixLen = keep;
      this.#prefixText = "";
    }
  }

  /** Erases KV tokens beyond the resident tape. */
  async #dropStaleTail(): Promise<void> {
    if (this.#seq.nextTokenIndex > this.#resident.length) {
      await this.#seq.eraseContextTokenRanges([
        { start: this.#resident.length, end: this.#seq.nextTokenIndex },
      ]);
    }
  }

  /** Appends tokens to the resident tape, evaluating only those the KV cache lacks. */
  async #prefill(tokens: Token[], stage: string, signal?: AbortSignal): Promise<void> {
    if (tokens.length === 0) return;
    const before = this.#resident.length;
    const kept = commonPrefix(this.#seq.contextTokens.slice(before), tokens);
    this.#resident.push(...tokens.slice(0, kept));
    const rest = tokens.slice(kept);
    const batch = Math.max(1, this.#context.batchSize);
    try {
      await this.#dropStaleTail();
      for (let i = 0; i < rest.length; i += batch) {
        if (signal?.aborted) throw ServiceError.of("context_canceled");
        const part = rest.slice(i, i + batch);
        await this.#seq.evaluateWithoutGeneratingNewTokens(part);
        this.#resident.push(...part);
      }
    } catch (err) {
      // Roll back to where we were; a failure that is not a cancel is fatal, as in modeld.
      this.#resident = this.#resident.slice(0, before);
      await this.#dropStaleTail().catch(() => {});
      if (err instanceof ServiceError && err.token === "context_canceled") throw err;
      throw this.#markFatal(`llamasession prefill ${stage} failed: ${(err as Error).message}`);
    }
    if (rest.length > 0) {
      this.#counters.prefillCalls++;
      this.#counters.prefillTokens += rest.length;
    }
  }

  /** Adds tokens to the session, to be evaluated by the next {@linkcode #sync}. */
  #defer(tokens: Token[]): void {
    if (tokens.length === 0) return;
    this.#pendingFrom ??= this.#resident.length;
    this.#resident.push(...tokens);
  }

  /** Evaluates the deferred tokens; on failure they are gone from the session, as a failed prefill's. */
  async #sync(stage: string, signal?: AbortSignal): Promise<void> {
    const from = this.#pendingFrom;
    if (from === undefined) return;
    this.#pendingFrom = undefined;
    const tokens = this.#resident.slice(from);
    this.#resident.length = from;
    try {
      await this.#prefill(tokens, stage, signal);
    } finally {
      if (this.#prefixLen > this.#resident.length) {
        this.#prefixLen = this.#resident.length;
        this.#prefixText = "";
      }
    }
  }

  #markFatal(cause: string): ServiceError {
    this.#fatal ||= cause;
    return ServiceError.of("session_fatal", this.#fatal);
  }

  /**
   * EnsurePrefix: render the stable messages alone, keep the longest common
   * token prefix of the resident tape, prefill the rest.
   *
   * @param prefix The stable prefix.
   * @param signal Cancels between batches.
   * @returns The PrefixStatus.
   *
   * @example
   * ```ts ignore
   * const st = await session.ensurePrefix(prefix);
   * ```
   */
  // deno-lint-ignore require-await -- the engine interface is async; a failure here is a rejection
  async ensurePrefix(prefix: PrefixInput, signal?: AbortSignal): Promise<PrefixStatusInit> {
    this.#check(signal);
    const manifest = prefix.manifest ?? create(ContextManifestSchema);
    const msgs = stableMessages(prefix.text, manifest);
    const text = msgs.length > 0
      ? this.#template.render(msgs, { addGenerationPrompt: false, tools: prefix.tools })
      : prefix.text;
    const toks = this.#tokenize(text, this.#addBos);
    if (toks.length > this.#numCtx) {
      throw ServiceError.overflow({
        stage: "prefix",
        residentTokens: 0,
        additionalTokens: toks.length,
        numCtx: this.#numCtx,
      });
    }
    const old = this.#resident.length;
    let reuse = 0;
    if (compatibleRuntime(this.#manifest, manifest) !== "") {
      this.#truncate(0);
    } else {
      reuse = commonPrefix(this.#resident, toks);
    }
    this.#truncate(reuse);
    this.#defer(toks.slice(reuse));
    this.#prefixLen = toks.length;
    this.#stableText = prefix.text;
    this.#prefixText = text;
    this.#stableMsgs = msgs;
    this.#tools = prefix.tools;
    const stableTokenHash = hashTokenIds(toks);
    this.#manifest = create(ContextManifestSchema, { ...manifest, stableTokenHash });
    return {
      reusedTokens: reuse,
      prefilledTokens: toks.length - reuse,
      droppedTokens: old - reuse,
      prefixTokens: toks.length,
      residentTokens: this.#resident.length,
      availableTokens: this.#numCtx - this.#resident.length,
      stableByteHash: manifest.stableByteHash,
      stableTokenHash,
      manifestDigest: manifestDigestNow(manifest),
    };
  }

  /**
   * PrefillSuffix: render the whole conversation with the generation prompt
   * and evaluate what the resident prefix does not already hold.
   *
   * @param suffix The volatile part.
   * @param signal Cancels between batches.
   * @returns The SuffixStatus.
   *
   * @example
   * ```ts ignore
   * const st = await session.prefillSuffix(suffix);
   * ```
   */
  async prefillSuffix(suffix: SuffixInput, signal?: AbortSignal): Promise<SuffixStatusInit> {
    this.#check(signal);
    const manifest = suffix.manifest ?? create(ContextManifestSchema);
    const why = compatibleRuntime(this.#manifest, manifest);
    if (why !== "") throw ServiceError.of("manifest_mismatch", why);
    if (
      this.#manifest.stableByteHash !== "" && manifest.stableByteHash !== "" &&
      this.#manifest.stableByteHash !== manifest.stableByteHash
    ) {
      throw ServiceError.of(
        "manifest_mismatch",
        "stable prefix changed between EnsurePrefix and PrefillSuffix",
      );
    }
    const volatile = volatileMessages(suffix.text, manifest);
    let stoks: Token[];
    if (this.#stableMsgs.length + volatile.length > 0) {
      const prompt = this.#template.render([...this.#stableMsgs, ...volatile], {
        addGenerationPrompt: true,
        tools: this.#tools,
        enableThinking: suffix.enableThinking ?? true,
        reasoningEffort: suffix.reasoningEffort,
      });
      this.#startsInThinking = prompt.trimEnd().endsWith("<think>");
      const full = this.#tokenize(prompt, this.#addBos);
      const head = this.#resident.slice(0, Math.min(this.#prefixLen, this.#resident.length));
      const shared = commonPrefix(head, full);
      if (shared < this.#prefixLen) this.#truncate(shared);
      stoks = full.slice(shared);
    } else {
      this.#startsInThinking = false;
      stoks = this.#tokenize(suffix.text, this.#prefixLen === 0 && this.#addBos);
    }
    if (this.#resident.length + stoks.length > this.#numCtx) {
      throw ServiceError.overflow({
        stage: "suffix",
        residentTokens: this.#resident.length,
        additionalTokens: stoks.length,
        numCtx: this.#numCtx,
      });
    }
    this.#defer(stoks);
    await this.#sync("suffix", signal);
    return {
      suffixTokens: stoks.length,
      prefixTokens: this.#prefixLen,
      residentTokens: this.#resident.length,
      availableTokens: this.#numCtx - this.#resident.length,
      manifestDigest: manifestDigestNow(this.#manifest),
    };
  }

  /**
   * Decode: stream text until end of generation, `MaxTokens` or a full
   * window (`context_overflow` in-band). Errors are in-band chunks.
   *
   * @param config Sampling and limits.
   * @param context The handle and the RPC's signal.
   * @returns The chunks.
   *
   * @example
   * ```ts ignore
   * for await (const c of session.decode(config, { handle, signal })) console.log(c.text);
   * ```
   */
  async *decode(config: DecodeConfig, context: DecodeContext): AsyncGenerator<DecodeChunkInit> {
    const { signal } = context;
    try {
      this.#check();
      if (signal.aborted) return;
      const protocol = config.structuredOutput?.protocol ?? "";
      const mode = structuredMode(protocol);
      if (mode === undefined) {
        throw ServiceError.of(
          "unsupported_feature",
          `structured output protocol ${
            JSON.stringify(protocol)
          } is not supported by the llama backend`,
        );
      }
      const grammar = mode
        ? await this.#grammar(mode, config.structuredOutput?.payload ?? "")
        : undefined;
      // With a grammar active, modeld ignores parser protocols.
      const parser = grammar ? undefined : this.#parser(config);
      await this.#sync("prefix", signal);
      this.#counters.decodeCalls++;
      const maxTokens = config.maxTokens <= 0 ? DEFAULTS.maxTokens : config.maxTokens;
      if (this.#resident.length === 0 || this.#resident.length >= this.#numCtx) {
        throw ServiceError.overflow({
          stage: "decode",
          residentTokens: this.#resident.length,
          additionalTokens: 1,
          numCtx: this.#numCtx,
        });
      }
      if (mode === "tool_calls") {
        let raw = "";
        for await (const chunk of this.#generate(config, maxTokens, signal, grammar)) {
          raw += chunk.text ?? "";
        }
        if (signal.aborted) return;
        const { text, toolCalls } = parseToolCallEnvelope(raw);
        if (text !== "" || toolCalls.length > 0) yield { text, toolCalls };
        return;
      }
      if (parser) {
        for await (const chunk of this.#generate(config, maxTokens, signal)) {
          const d = parser.push(chunk.text ?? "");
          if (d.text || d.thinking) yield { text: d.text, thinking: d.thinking };
        }
        if (signal.aborted) return;
        const d = parser.finish();
        if (d.text || d.thinking || d.toolCalls.length > 0) {
          yield { text: d.text, thinking: d.thinking, toolCalls: d.toolCalls };
        }
        return;
      }
      yield* this.#generate(config, maxTokens, signal, grammar);
    } catch (err) {
      if (signal.aborted) return;
      const e = err instanceof ServiceError
        ? err
        : this.#markFatal(`llamasession decode token: ${(err as Error).message}`);
      const chunk: DecodeChunkInit = { error: e.message, errorToken: errorToken(e) };
      if (e.detail) chunk.errorDetail = { ...e.detail };
      yield chunk;
    }
  }

  /** The output parser the Decode's `ParserProtocols` ask for (modeld's rules). */
  #parser(config: DecodeConfig): ChatOutputParser | undefined {
    let tools = false;
    let reasoning = false;
    for (const p of config.parserProtocols) {
      if (p === "") continue;
      if (p === TOOL_PARSER) {
        tools = true;
      } else if (p === REASONING_PARSER) {
        if (!config.reasoningFormat && !this.#reasoningFormat) {
          throw ServiceError.of(
            "unsupported_feature",
            `reasoning format is required for parser protocol ${JSON.stringify(p)}`,
          );
        }
        reasoning = true;
      } else {
        throw ServiceError.of("unsupported_feature", `parser protocol ${JSON.stringify(p)}`);
      }
    }
    if (!tools && !reasoning) return undefined;
    return new ChatOutputParser({ tools, reasoning, startsInThinking: this.#startsInThinking });
  }

  /** The grammar of a JSON Schema payload, as modeld builds GBNF from it. */
  async #grammar(mode: StructuredMode, payload: string): Promise<LlamaGrammar> {
    const what = mode === "tool_calls" ? "structured tool-call schema" : "structured output schema";
    try {
      return await this.#model.llama.createGrammarForJsonSchema(JSON.parse(payload));
    } catch (err) {
      throw new ServiceError("", `llamasession: ${what}: ${(err as Error).message}`);
    }
  }

  async *#generate(
    config: DecodeConfig,
    maxTokens: number,
    signal: AbortSignal,
    grammar?: LlamaGrammar,
  ): AsyncGenerator<DecodeChunkInit> {
    // Re-evaluate the last resident token to get fresh logits, as modeld does.
    const last = this.#resident[this.#resident.length - 1];
    await this.#seq.eraseContextTokenRanges([
      { start: this.#resident.length - 1, end: this.#seq.nextTokenIndex },
    ]);
    this.#resident.pop();
    this.#counters.prefillCalls++;
    this.#counters.prefillTokens++;
    const seed = config.seed !== undefined && config.seed >= 0n
      ? Number(BigInt.asUintN(32, config.seed))
      : 0;
    const topP = config.topP ?? DEFAULTS.topP;
    const temperature = Math.max(0, config.temperature ?? DEFAULTS.temperature);
    // Greedy picks the most likely token whatever top-k/top-p/min-p keep, so
    // skip them: same tokens, and the sampler no longer sorts the vocabulary.
    const greedy = temperature === 0;
    const it = this.#seq.evaluate([last], {
      temperature,
      topK: greedy ? undefined : config.topK > 0 ? config.topK : DEFAULTS.topK,
      topP: !greedy && topP > 0 && topP < 1 ? topP : undefined,
      minP: greedy ? undefined : DEFAULTS.minP,
      seed,
      grammarEvaluationState: grammar
        ? new LlamaGrammarEvaluationState({ model: this.#model, grammar })
        : undefined,
    });
    this.#resident.push(last); // evaluated by the first next()
    const text = new PieceDecoder(this.#model);
    // A grammar-constrained value ends where the JSON does: stop there rather
    // than let the grammar's trailing whitespace run to MaxTokens.
    const json = new JsonEnd();
    let produced = 0;
    let pending: Token | undefined;
    try {
      for (;;) {
        if (signal.aborted) return;
        const step = await it.next();
        if (step.done) return;
        const tok = step.value;
        if (this.#model.isEogToken(tok)) break; // EOG: not emitted, not resident
        produced++;
        const piece = text.push(tok);
        if (grammar) json.push(piece);
        if (produced >= maxTokens || (grammar !== undefined && json.complete())) {
          pending = tok; // modeld makes the last token resident too
          if (piece) yield { text: piece };
          break;
        }
        if (this.#resident.length + 1 > this.#numCtx) {
          if (piece) yield { text: piece };
          throw ServiceError.overflow({
            stage: "decode",
            residentTokens: this.#resident.length,
            additionalTokens: 1,
            numCtx: this.#numCtx,
          });
        }
        this.#resident.push(tok); // evaluated by the next next()
        if (piece) yield { text: piece };
      }
      const rest = text.flush();
      if (rest) yield { text: rest };
    } finally {
      await it.return();
      // Tokens we counted as resident but the generator never evaluated.
      if (this.#resident.length > this.#seq.nextTokenIndex) {
        this.#resident = this.#resident.slice(0, this.#seq.nextTokenIndex);
      }
      if (pending !== undefined && this.#resident.length < this.#numCtx && !signal.aborted) {
        await this.#seq.evaluateWithoutGeneratingNewTokens([pending]);
        this.#resident.push(pending);
      }
    }
  }

  /**
   * The observability report.
   *
   * @returns The ContextReport.
   *
   * @example
   * ```ts ignore
   * console.log((await session.explain()).residentTokens);
   * ```
   */
  // deno-lint-ignore require-await -- the engine interface is async
  async explain(): Promise<ContextReportInit> {
    return {
      residentTokens: this.#resident.length,
      prefixTokens: this.#prefixLen,
      numCtx: this.#numCtx,
      hotContextTokens: this.#numCtx,
      plannerEffectiveContext: this.#numCtx,
      availableTokens: this.#numCtx - this.#resident.length,
      stableByteHash: this.#manifest.stableByteHash,
      stableTokenHash: this.#manifest.stableTokenHash,
      manifestDigest: manifestDigestNow(this.#manifest),
      manifest: this.#manifest,
      closed: this.#closed,
      fatalError: this.#fatal,
      physicalPrefillCalls: this.#counters.prefillCalls,
      physicalPrefillTokens: this.#counters.prefillTokens,
      decodeCalls: this.#counters.decodeCalls,
    };
  }

  /**
   * Snapshot: the engine's whole context state in `state` (the slot moves it
   * to the blob store) plus the tape and texts.
   *
   * @param signal Cancels before saving.
   * @returns The snapshot.
   *
   * @example
   * ```ts ignore
   * const snap = await session.snapshot();
   * ```
   */
  async snapshot(signal?: AbortSignal): Promise<SessionSnapshotInit> {
    this.#check(signal);
    await this.#sync("prefix", signal);
    await this.#dropStaleTail();
    const file = await Deno.makeTempFile({ dir: this.#scratchDir, suffix: ".state" });
    try {
      await this.#seq.saveStateToFile(file);
      const state = await Deno.readFile(file);
      return {
        state,
        residentTokens: this.#resident.length,
        prefixTokens: this.#prefixLen,
        numCtx: this.#numCtx,
        residentTokenIds: [...this.#resident],
        stableText: this.#stableText,
        prefixText: this.#prefixText,
        tools: this.#tools,
        manifest: this.#manifest,
      };
    } catch (err) {
      throw this.#markFatal(`llamasession snapshot: ${(err as Error).message}`);
    } finally {
      await Deno.remove(file).catch(() => {});
    }
  }

  /**
   * Restore: modeld's checks, then the saved state and tape.
   *
   * @param snap The snapshot, with `state` filled from the blob store.
   * @param signal Cancels before loading.
   *
   * @example
   * ```ts ignore
   * await session.restore(snap);
   * ```
   */
  async restore(snap: SessionSnapshot, signal?: AbortSignal): Promise<void> {
    this.#check(signal);
    if (snap.numCtx > 0 && snap.numCtx !== this.#numCtx) {
      throw ServiceError.of("manifest_mismatch", "snapshot context window changed");
    }
    if (
      snap.residentTokens < 0 || snap.prefixTokens < 0 || snap.prefixTokens > snap.residentTokens
    ) {
      throw new ServiceError(
        "",
        `llamasession restore invalid snapshot: prefix_tokens=${snap.prefixTokens} resident_tokens=${snap.residentTokens}`,
      );
    }
    if (snap.residentTokens > this.#numCtx) {
      throw ServiceError.overflow({
        stage: "restore",
        residentTokens: 0,
        additionalTokens: snap.residentTokens,
        numCtx: this.#numCtx,
      });
    }
    if (snap.residentTokens > 0 && snap.residentTokenIds.length !== snap.residentTokens) {
      throw new ServiceError(
        "",
        `llamasession restore invalid snapshot: resident_token_ids=${snap.residentTokenIds.length} resident_tokens=${snap.residentTokens}`,
      );
    }
    const manifest = snap.manifest ?? create(ContextManifestSchema);
    const why = compatibleRuntime(this.#manifest, manifest);
    if (why !== "") throw ServiceError.of("manifest_mismatch", why);
    if (snap.residentTokens > 0 && snap.state.length === 0) {
      throw new ServiceError(
        "",
        "llamasession restore invalid snapshot: non-empty resident token set has empty state",
      );
    }
    this.#truncate(0);
    await this.#dropStaleTail();
    if (snap.residentTokens > 0) {
      const file = await Deno.makeTempFile({ dir: this.#scratchDir, suffix: ".state" });
      try {
        await Deno.writeFile(file, snap.state);
        await this.#seq.loadStateFromFile(file, { acceptRisk: true });
      } catch (err) {
        throw this.#markFatal(`llamasession restore state: ${(err as Error).message}`);
      } finally {
        await Deno.remove(file).catch(() => {});
      }
    }
    this.#resident = snap.residentTokenIds.map((t) => t as Token);
    this.#prefixLen = snap.prefixTokens;
    this.#stableText = snap.stableText;
    this.#tools = snap.tools;
    this.#manifest = manifest;
    this.#stableMsgs = stableMessages(snap.stableText, manifest);
    this.#prefixText = snap.prefixText || snap.stableText;
  }

  /**
   * Frees the context and the model. Idempotent.
   *
   * @example
   * ```ts ignore
   * await session.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#resident = [];
    this.#prefixLen = 0;
    await this.#context.dispose();
    await this.#model.dispose();
  }
}

/** Notices when streamed text has become one complete JSON value. */
class JsonEnd {
  #text = "";

  push(piece: string): void {
    this.#text += piece;
  }

  complete(): boolean {
    const t = this.#text.trimEnd();
    const last = t.at(-1);
    if (last !== "}" && last !== "]" && last !== '"') return false;
    try {
      JSON.parse(t);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Turns tokens into text deltas, holding back a piece that ends inside a
 * UTF-8 sequence (modeld sends U+FFFD there; whole characters are better).
 */
class PieceDecoder {
  readonly #model: LlamaModel;
  #held: Token[] = [];
  #context: Token[] = [];

  constructor(model: LlamaModel) {
    this.#model = model;
  }

  push(tok: Token): string {
    this.#held.push(tok);
    const text = this.#model.detokenize(this.#held, true, this.#context);
    if (text.endsWith("\uFFFD") && this.#held.length < 4) return "";
    this.#context = [...this.#context, ...this.#held].slice(-8);
    this.#held = [];
    return text;
  }

  flush(): string {
    if (this.#held.length === 0) return "";
    const text = this.#model.detokenize(this.#held, true, this.#context);
    this.#held = [];
    return text;
  }
}
