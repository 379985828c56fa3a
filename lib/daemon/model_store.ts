/**
 * The daemon's on-disk model store (HEAD `modeld/modelstore`), used by the
 * test daemon for ListModels, RemoveModel, DiskStats, PushModel and for
 * resolving a request that names a model without a `path`:
 * `<modelsDir>/<name>/model.gguf` for llama, `<modelsDir>/<name>/openvino_model.xml`
 * (or `openvino_language_model.xml`) for OpenVINO. Pushes are staged in
 * `<modelsDir>/.staging-<name>-*`, hashed with SHA-256 while written, and
 * renamed into place. Only the `file` push format is supported (a `tar` push
 * fails with an internal error).
 *
 * Needs `--allow-read` and `--allow-write` on the models directory, and
 * `--allow-sys=statfs` for DiskStats.
 *
 * @example
 * ```ts ignore
 * import { ModelStore } from "./model_store.ts";
 * const store = new ModelStore("/tmp/root/models");
 * await store.seed("qwen", new TextEncoder().encode("weights"));
 * console.log(await store.list());
 * ```
 *
 * @module
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { createHash } from "node:crypto";
import { statfsSync } from "node:fs";
import { join } from "node:path";
import type {
  NodeDiskStatsSchema,
  NodeModelSchema,
  PushManifest,
} from "../../gen/contenox/transport/v1/compute_pb.ts";
import { ServiceError } from "./sentinels.ts";

const STAGING_PREFIX = ".staging-";
const OPENVINO_ENTRYPOINTS = ["openvino_model.xml", "openvino_language_model.xml"];

/** What a push did. */
export interface PushResult {
  /** A model of that name and digest was already installed; the new bytes were discarded. */
  alreadyPresent: boolean;
  /** Raw stream bytes received. */
  bytesWritten: bigint;
}

/**
 * A models directory.
 *
 * @example
 * ```ts ignore
 * import { ModelStore } from "./model_store.ts";
 * const store = new ModelStore("/tmp/root/models");
 * const path = await store.resolve("qwen", "llama", "");
 * ```
 */
export class ModelStore {
  /** The models directory. */
  readonly dir: string;
  readonly #inFlight = new Set<string>();

  /**
   * @param dir The models directory (`<dataRoot>/models` by default in modeld).
   */
  constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * Writes `<dir>/<name>/model.gguf` directly (test setup).
   *
   * @param name The model name.
   * @param bytes The file content.
   * @returns The file path.
   *
   * @example
   * ```ts ignore
   * await store.seed("a", new TextEncoder().encode("weights-a"));
   * ```
   */
  async seed(name: string, bytes: Uint8Array): Promise<string> {
    const modelDir = join(this.dir, name);
    await Deno.mkdir(modelDir, { recursive: true });
    const path = join(modelDir, "model.gguf");
    await Deno.writeFile(path, bytes);
    return path;
  }

  /**
   * Resolves a model by name and type, verifying a llama file's digest when
   * one is given.
   *
   * @param name The model name.
   * @param type `llama` or `openvino`.
   * @param wantDigest The expected SHA-256 hex ("" = don't check; ignored for openvino).
   * @returns The file (llama) or directory (openvino) path.
   * @throws {ServiceError} `model_not_found`, `digest_mismatch`, `unsupported_model_type`.
   *
   * @example
   * ```ts ignore
   * const path = await store.resolve("qwen", "llama", "");
   * ```
   */
  async resolve(name: string, type: string, wantDigest: string): Promise<string> {
    if (name === "") throw ServiceError.of("model_not_found", "empty model name");
    const modelDir = join(this.dir, name);
    if (type === "llama") {
      const path = join(modelDir, "model.gguf");
      if (!(await exists(path))) throw ServiceError.of("model_not_found", `${name} (llama)`);
      if (wantDigest !== "") {
        const got = await fileDigest(path);
        if (got !== wantDigest) {
          throw ServiceError.of("digest_mismatch", `model ${name} want=${wantDigest} got=${got}`);
        }
      }
      return path;
    }
    if (type === "openvino") {
      for (const entry of OPENVINO_ENTRYPOINTS) {
        if (await exists(join(modelDir, entry))) return modelDir;
      }
      throw ServiceError.of("model_not_found", `${name} (openvino)`);
    }
    throw ServiceError.of("unsupported_model_type", JSON.stringify(type));
  }

  /**
   * Lists installed models (staging directories skipped). `context_length` is
   * never filled (no GGUF header parser here, like a build without llama).
   *
   * @returns The models, in directory order sorted by name.
   *
   * @example
   * ```ts ignore
   * for (const m of await store.list()) console.log(m.name, m.digest);
   * ```
   */
  async list(): Promise<MessageInitShape<typeof NodeModelSchema>[]> {
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        if (e.isDirectory && !e.name.startsWith(STAGING_PREFIX)) names.push(e.name);
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw new ServiceError("", `modelstore: read models dir: ${(err as Error).message}`);
    }
    names.sort(); // Go's os.ReadDir sorts by name
    const out: MessageInitShape<typeof NodeModelSchema>[] = [];
    for (const name of names) {
      const gguf = join(this.dir, name, "model.gguf");
      if (await exists(gguf)) {
        const size = (await Deno.stat(gguf)).size;
        out.push({ name, type: "llama", digest: await fileDigest(gguf), sizeBytes: BigInt(size) });
        continue;
      }
      try {
        const dir = await this.resolve(name, "openvino", "");
        out.push({ name, type: "openvino", sizeBytes: await dirSize(dir) });
      } catch {
        // neither layout: not a model
      }
    }
    return out;
  }

  /**
   * Deletes a model's directory.
   *
   * @param name The model name.
   * @throws {ServiceError} `model_not_found`; internal for an empty name.
   *
   * @example
   * ```ts ignore
   * await store.remove("qwen");
   * ```
   */
  async remove(name: string): Promise<void> {
    if (name === "") throw new ServiceError("", "modelstore: empty model name");
    const modelDir = join(this.dir, name);
    if (!(await exists(modelDir))) throw ServiceError.of("model_not_found");
    await Deno.remove(modelDir, { recursive: true });
  }

  /**
   * Free, used and total bytes of the filesystem holding the models directory
   * (gopsutil's formula: total = blocks·frsize, free = bavail·frsize, used =
   * (blocks − bfree)·frsize). Creates the directory first, as modeld does.
   *
   * @returns The NodeDiskStats.
   *
   * @example
   * ```ts ignore
   * console.log((await store.diskStats()).totalBytes);
   * ```
   */
  async diskStats(): Promise<MessageInitShape<typeof NodeDiskStatsSchema>> {
    await Deno.mkdir(this.dir, { recursive: true });
    try {
      const st = statfsSync(this.dir, { bigint: true });
      const frsize = BigInt(st.bsize);
      return {
        totalBytes: BigInt(st.blocks) * frsize,
        freeBytes: BigInt(st.bavail) * frsize,
        usedBytes: (BigInt(st.blocks) - BigInt(st.bfree)) * frsize,
      };
    } catch (err) {
      throw new ServiceError("", `modelstore: disk usage: ${(err as Error).message}`);
    }
  }

  /**
   * Receives a pushed model: verifies the type, stages the bytes while
   * hashing them, checks the digest, and installs them unless a model with
   * that name and digest is already there.
   *
   * @param manifest The push manifest (first frame).
   * @param data The raw byte stream.
   * @returns Whether it was already present, and the bytes received.
   * @throws {ServiceError} `unsupported_model_type`, `digest_mismatch`; internal for a
   *   missing name, a concurrent push of the same name or an unsupported format.
   *
   * @example
   * ```ts ignore
   * const res = await store.receive(manifest, frames);
   * ```
   */
  async receive(manifest: PushManifest, data: AsyncIterable<Uint8Array>): Promise<PushResult> {
    const { name, type } = manifest;
    if (name === "") throw new ServiceError("", "modelstore: push manifest missing model name");
    if (type !== "llama" && type !== "openvino") {
      throw ServiceError.of("unsupported_model_type", JSON.stringify(type));
    }
    if (this.#inFlight.has(name)) {
      throw new ServiceError(
        "",
        `modelstore: push already in progress for ${JSON.stringify(name)}`,
      );
    }
    this.#inFlight.add(name);
    let staging: string | undefined;
    try {
      await Deno.mkdir(this.dir, { recursive: true });
      staging = await Deno.makeTempDir({ dir: this.dir, prefix: `${STAGING_PREFIX}${name}-` });
      if (manifest.format !== "file") {
        throw new ServiceError(
          "",
          manifest.format === "tar"
            ? "modelstore: write staged content: tar pushes are not supported by the test daemon"
            : `modelstore: unsupported push format ${JSON.stringify(manifest.format)}`,
        );
      }
      const hash = createHash("sha256");
      let written = 0n;
      const file = await Deno.open(join(staging, "model.gguf"), { write: true, createNew: true });
      try {
        for await (const chunk of data) {
          hash.update(chunk);
          written += BigInt(chunk.length);
          let off = 0;
          while (off < chunk.length) off += await file.write(chunk.subarray(off));
        }
      } finally {
        file.close();
      }
      const got = hash.digest("hex");
      if (manifest.digest !== "" && got !== manifest.digest) {
        throw ServiceError.of(
          "digest_mismatch",
          `model ${name} want=${manifest.digest} got=${got}`,
        );
      }
      try {
        await this.resolve(name, type, got);
        return { alreadyPresent: true, bytesWritten: written };
      } catch {
        // not there (or different digest): install
      }
      const modelDir = join(this.dir, name);
      await Deno.remove(modelDir, { recursive: true }).catch(() => {});
      await Deno.rename(staging, modelDir);
      staging = undefined;
      return { alreadyPresent: false, bytesWritten: written };
    } finally {
      this.#inFlight.delete(name);
      if (staging !== undefined) await Deno.remove(staging, { recursive: true }).catch(() => {});
    }
  }
}

/**
 * The SHA-256 hex digest of a file's content.
 *
 * @param path The file.
 * @returns Lowercase hex.
 *
 * @example
 * ```ts ignore
 * import { fileDigest } from "./model_store.ts";
 * console.log(await fileDigest("/tmp/root/models/a/model.gguf"));
 * ```
 */
export async function fileDigest(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

/**
 * Whether a path exists (false only for NotFound; other errors are thrown).
 *
 * @param path The path.
 * @returns Whether it exists.
 *
 * @example
 * ```ts
 * import { exists } from "./model_store.ts";
 * console.assert(!(await exists(`${await Deno.makeTempDir()}/missing`)));
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function dirSize(dir: string): Promise<bigint> {
  let total = 0n;
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) total += await dirSize(p);
    else if (e.isFile) total += BigInt((await Deno.stat(p)).size);
  }
  return total;
}
