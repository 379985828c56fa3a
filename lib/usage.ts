/**
 * What a generation cost and why it stopped ({@linkcode Usage}), and the
 * sampling options the high-level API takes ({@linkcode SamplingOptions}).
 *
 * modeld's Decode stream carries no stop reason and no token counts, so
 * {@linkcode Usage.stopReason} is derived from what the wire does say:
 *
 * - `"error"`: the daemon sent an error (or the call failed); the error is thrown.
 * - `"cancelled"`: you stopped it (`break`, `cancel()`, your signal).
 * - `"max_tokens"`: the stream ended normally after at least `maxTokens`
 *   chunks. Every chunk carries at least one token and the daemon never
 *   exceeds `maxTokens`, so the cap was certainly reached.
 * - `"end"`: the stream ended normally with fewer chunks than `maxTokens` (or
 *   no `maxTokens` was set): the model stopped by itself, as far as the wire
 *   shows. A daemon that sends several tokens in one chunk (the llama.cpp
 *   daemon joins the bytes of a split character) can reach the cap with fewer
 *   chunks; that reads as `"end"`.
 *
 * @example
 * ```ts
 * import type { Usage } from "@contenox/modeldconn";
 * const usage: Usage = {
 *   promptTokens: 41, reusedTokens: 12, prefilledTokens: 29, prefixPrefilledTokens: 0,
 *   suffixTokens: 29, chunks: 16, stopReason: "max_tokens",
 * };
 * ```
 *
 * @module
 */

import type { DecodeConfigInit } from "./session.ts";

/**
 * Why a generation stopped; see the module docs for how it is derived.
 *
 * @example
 * ```ts
 * import type { StopReason } from "@contenox/modeldconn";
 * const reason: StopReason = "end";
 * ```
 */
export type StopReason = "end" | "max_tokens" | "cancelled" | "error";

/**
 * Token counts of one generation, as the daemon reported them (tokens are
 * the daemon's: real tokens on the llama.cpp daemon, code points on the
 * test daemon).
 *
 * @example
 * ```ts ignore
 * const { usage } = await generate({ model: "smollm2", prompt: "Hi", dataRoot });
 * console.log(usage.reusedTokens, usage.chunks, usage.stopReason);
 * ```
 */
export interface Usage {
  /** Tokens resident for the prompt after the prefill (prefix plus conversation). */
  promptTokens: number;
  /** Prefix tokens the daemon kept warm from the previous turn (`reusedTokens > 0` is a warm hit). */
  reusedTokens: number;
  /** Tokens evaluated this turn: the prefix's cold part plus the suffix. */
  prefilledTokens: number;
  /** Of those, the prefix's. */
  prefixPrefilledTokens: number;
  /** Of those, the suffix's (the conversation after the system prompt). */
  suffixTokens: number;
  /** Chunks the daemon streamed (at least one token each). */
  chunks: number;
  /** Why generation stopped. */
  stopReason: StopReason;
}

/**
 * Sampling knobs; unset fields take the daemon's defaults (modeld: temperature
 * 0.8, top-k 40, top-p 0.9, 256 tokens).
 *
 * @example
 * ```ts
 * import type { SamplingOptions } from "@contenox/modeldconn";
 * const greedy: SamplingOptions = { maxTokens: 64, temperature: 0 };
 * ```
 */
export interface SamplingOptions {
  /** At most this many tokens. */
  maxTokens?: number;
  /** Sampling temperature; 0 is greedy. */
  temperature?: number;
  /** Nucleus sampling threshold, 0 to 1. */
  topP?: number;
  /** Sample among the k most likely tokens. */
  topK?: number;
  /** Random seed, for reproducible sampling. */
  seed?: number | bigint;
}

/**
 * The Decode config for sampling options.
 *
 * @param options The sampling options.
 * @returns The DecodeConfig fields that were given.
 *
 * @example
 * ```ts ignore
 * session.decode(decodeConfigFor({ maxTokens: 8, seed: 1 }));
 * ```
 */
export function decodeConfigFor(options: SamplingOptions): DecodeConfigInit {
  const cfg: DecodeConfigInit = {};
  if (options.maxTokens !== undefined) cfg.maxTokens = options.maxTokens;
  if (options.temperature !== undefined) cfg.temperature = options.temperature;
  if (options.topP !== undefined) cfg.topP = options.topP;
  if (options.topK !== undefined) cfg.topK = options.topK;
  if (options.seed !== undefined) cfg.seed = BigInt(options.seed);
  return cfg;
}

/**
 * A usage with nothing counted yet.
 *
 * @returns Zero counts, stop reason `"cancelled"` until the generation ends.
 *
 * @example
 * ```ts ignore
 * const usage = emptyUsage();
 * ```
 */
export function emptyUsage(): Usage {
  return {
    promptTokens: 0,
    reusedTokens: 0,
    prefilledTokens: 0,
    prefixPrefilledTokens: 0,
    suffixTokens: 0,
    chunks: 0,
    stopReason: "cancelled",
  };
}
