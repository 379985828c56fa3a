/**
 * Naming a model: a store name or a {@linkcode ModelRef}, and the default
 * rule the CLI uses too: with no model named, the only model in the daemon's
 * store.
 *
 * @example
 * ```ts ignore
 * import { ModeldClient, resolveModel } from "@contenox/modeldconn";
 *
 * await using client = new ModeldClient({ dataRoot: "/home/me/.contenox" });
 * const ref = await resolveModel(client); // the only stored model, or NoDefaultModelError
 * ```
 *
 * @module
 */

import type { CallOptions } from "./call.ts";
import { DaemonTooOldError, InvalidArgumentError, NoDefaultModelError } from "./errors.ts";
import type { ModeldNode, ModelRef } from "./node.ts";

/**
 * A model as the high-level API takes it: a name in the daemon's store
 * (v0.34.0+), or a full {@linkcode ModelRef} (for example with a `path`).
 *
 * @example
 * ```ts
 * import type { ModelInput } from "@contenox/modeldconn";
 * const byName: ModelInput = "smollm2";
 * const byPath: ModelInput = { name: "smollm2", path: "/models/smollm2.gguf" };
 * ```
 */
export type ModelInput = string | ModelRef;

/**
 * A {@linkcode ModelRef} for a model input (a name becomes `{ name }`).
 *
 * @param model A store name or a reference.
 * @returns The reference.
 * @throws {InvalidArgumentError} When the name is empty.
 *
 * @example
 * ```ts
 * import { toModelRef } from "@contenox/modeldconn";
 * console.assert(toModelRef("smollm2").name === "smollm2");
 * ```
 */
export function toModelRef(model: ModelInput): ModelRef {
  const ref = typeof model === "string" ? { name: model } : model;
  if (ref.name === "" && !ref.path) {
    throw new InvalidArgumentError(
      "Cannot use a model without a name: pass a store name or a ModelRef with a path",
    );
  }
  return ref;
}

/**
 * The model to use when none is named: the only model in the daemon's store.
 *
 * @param node The daemon (a client or a remote node).
 * @param options Signal and timeout.
 * @returns `{ name, type }` of the stored model.
 * @throws {NoDefaultModelError} When the store is empty, holds several, or the daemon has none.
 *
 * @example
 * ```ts ignore
 * import { defaultModel, ModeldClient } from "@contenox/modeldconn";
 * await using client = new ModeldClient({ dataRoot: "/home/me/.contenox" });
 * console.log((await defaultModel(client)).name);
 * ```
 */
export async function defaultModel(node: ModeldNode, options: CallOptions = {}): Promise<ModelRef> {
  let models;
  try {
    models = await node.listModels(options);
  } catch (err) {
    if (err instanceof DaemonTooOldError) throw new NoDefaultModelError([], { cause: err });
    throw err;
  }
  if (models.length !== 1) throw new NoDefaultModelError(models.map((m) => m.name));
  return { name: models[0].name, type: models[0].type || undefined };
}

/**
 * The model to use: the one given, else {@linkcode defaultModel}.
 *
 * @param node The daemon.
 * @param model A store name, a reference, or nothing.
 * @param options Signal and timeout.
 * @returns The reference.
 * @throws {NoDefaultModelError} When no model is given and the store does not hold exactly one.
 *
 * @example
 * ```ts ignore
 * import { ModeldClient, resolveModel } from "@contenox/modeldconn";
 * await using client = new ModeldClient({ dataRoot: "/home/me/.contenox" });
 * const ref = await resolveModel(client, "smollm2");
 * ```
 */
export async function resolveModel(
  node: ModeldNode,
  model?: ModelInput,
  options: CallOptions = {},
): Promise<ModelRef> {
  if (model === undefined) return await defaultModel(node, options);
  return toModelRef(model);
}
