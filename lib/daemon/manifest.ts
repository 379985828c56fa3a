/**
 * The manifest rules every engine shares (contract §8.1): when a manifest is
 * "zero", and when two are runtime-compatible (a warm prefix may be reused).
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { ContextManifestSchema } from "../../gen/contenox/transport/v1/compute_pb.ts";
 * import { compatibleRuntime } from "./manifest.ts";
 * console.assert(compatibleRuntime(create(ContextManifestSchema), create(ContextManifestSchema)) === "");
 * ```
 *
 * @module
 */

import type { ContextManifest } from "../../gen/contenox/transport/v1/compute_pb.ts";

/**
 * Whether a manifest is "zero" (the caller sent none), as contextasm defines it.
 *
 * @param m The manifest.
 * @returns True when every identity field and the stable hash are empty.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { ContextManifestSchema } from "../../gen/contenox/transport/v1/compute_pb.ts";
 * import { isZeroManifest } from "./manifest.ts";
 * console.assert(isZeroManifest(create(ContextManifestSchema)));
 * ```
 */
export function isZeroManifest(m: ContextManifest): boolean {
  return m.backend === "" && m.profileId === "" && m.modelDigest === "" && m.promptFormat === "" &&
    m.promptTemplateDigest === "" && m.runtimeDigest === "" && m.stableByteHash === "";
}

/**
 * contextasm's `CompatibleRuntime`: `""` when resident KV built for `a` may be
 * reused for `b`, else the reason (`"<field> changed"`, `"bos policy changed"`).
 *
 * @param a The resident manifest.
 * @param b The new manifest.
 * @returns The reason they are incompatible, or `""`.
 *
 * @example
 * ```ts
 * import { create } from "@bufbuild/protobuf";
 * import { ContextManifestSchema } from "../../gen/contenox/transport/v1/compute_pb.ts";
 * import { compatibleRuntime } from "./manifest.ts";
 * const a = create(ContextManifestSchema, { backend: "llama", promptTemplateDigest: "t1" });
 * const b = create(ContextManifestSchema, { backend: "llama", promptTemplateDigest: "t2" });
 * console.assert(compatibleRuntime(a, b) === "prompt_template_digest changed");
 * ```
 */
export function compatibleRuntime(a: ContextManifest, b: ContextManifest): string {
  if (isZeroManifest(a) || isZeroManifest(b)) return "";
  const checks: [string, string, string][] = [
    ["profile_id", a.profileId, b.profileId],
    ["backend", a.backend, b.backend],
    ["backend_version", a.backendVersion, b.backendVersion],
    ["model_digest", a.modelDigest, b.modelDigest],
    ["prompt_format", a.promptFormat, b.promptFormat],
    ["prompt_template_digest", a.promptTemplateDigest, b.promptTemplateDigest],
    ["runtime_digest", a.runtimeDigest, b.runtimeDigest],
  ];
  for (const [name, x, y] of checks) if (x !== y) return `${name} changed`;
  if (a.addBos !== b.addBos) return "bos policy changed";
  return "";
}
