/**
 * {@linkcode WireInit}: what you pass where the daemon expects a wire message
 * (a plain object with any of its fields), written without protobuf-es's
 * internal types so the documentation can show it.
 *
 * @example
 * ```ts
 * import type { DecodeConfig, WireInit } from "@contenox/modeldconn/wire";
 * const config: WireInit<DecodeConfig> = { maxTokens: 64, temperature: 0 };
 * ```
 *
 * @module
 */

import type { Message } from "@bufbuild/protobuf";

/**
 * The initialiser of a wire message `T`: every field optional, nested
 * messages as initialisers too, without `$typeName`.
 *
 * @example
 * ```ts
 * import type { Config, WireInit } from "@contenox/modeldconn/wire";
 * const config: WireInit<Config> = { numCtx: 8192 };
 * ```
 */
export type WireInit<T> = {
  [K in keyof T as K extends "$typeName" | "$unknown" ? never : K]?: T[K] extends
    readonly (infer U)[] ? (U extends Message ? WireInit<U>[] : T[K])
    : T[K] extends Message | undefined ? WireInit<NonNullable<T[K]>>
    : T[K];
};
