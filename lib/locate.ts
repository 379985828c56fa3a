/**
 * Finds the modeld binary the way the Go runtime's probe does:
 *
 * 1. `$CONTENOX_MODELD_BIN`: when set, it alone decides (used iff it exists
 *    and is not a directory; PATH is then not consulted);
 * 2. a managed install under `<dataRoot>/modeld` (the `current` pointer, then
 *    the highest `<version>/<os>-<arch>/modeld`), checked by running
 *    `modeld version --json` when `--allow-run` for it was granted;
 * 3. `modeld` on `$PATH`.
 *
 * The search never throws and never prompts for a permission: a source it may
 * not look at is skipped and the flag that would allow it is reported in
 * {@linkcode LocateResult.skipped}.
 *
 * @example
 * ```ts
 * import { locateModeld } from "./locate.ts";
 *
 * const found = await locateModeld("/home/me/.contenox");
 * if (found.path) console.log(`modeld at ${found.path} (${found.source})`);
 * else if (found.skipped.length) console.log(`not found; grant ${found.skipped.join(" ")}`);
 * ```
 *
 * @module
 */

import { basename, delimiter, dirname, isAbsolute, join } from "./path.ts";
import { readEnv } from "./data_root.ts";

/** Where {@linkcode locateModeld} found the binary. */
export type BinarySource = "env" | "managed" | "path";

/** The outcome of {@linkcode locateModeld}. */
export interface LocateResult {
  /** The binary (or managed launcher) path, when found. */
  path?: string;
  /** Which rule found it; `undefined` when not found. */
  source: BinarySource | undefined;
  /**
   * For a managed install: whether `modeld version --json` confirmed a
   * compatible protocol (false when `--allow-run` for it was not granted and
   * the launcher was accepted because it exists).
   */
  versionChecked?: boolean;
  /**
   * The permission flags whose absence skipped a check, e.g.
   * `--allow-env=CONTENOX_MODELD_BIN` or `--allow-read=/usr/bin`. When
   * non-empty and `path` is undefined, the binary may exist after all.
   */
  skipped: string[];
}

/** Options for {@linkcode locateModeld}. */
export interface LocateOptions {
  /** Aborts a running `modeld version --json` check. */
  signal?: AbortSignal;
}

const BIN_ENV = "CONTENOX_MODELD_BIN";
const PROTOCOL_MIN = 1;
const PROTOCOL_MAX = 1;
const VERSION_TIMEOUT_MS = 10_000;

/** The launcher file name: `modeld`, or `modeld.cmd` on Windows. */
function launcherName(): string {
  return Deno.build.os === "windows" ? "modeld.cmd" : "modeld";
}

/** Go's `<goos>-<goarch>` platform directory name for this machine. */
function platform(): string {
  const arch = ({ x86_64: "amd64", aarch64: "arm64" } as Record<string, string>)[Deno.build.arch] ??
    Deno.build.arch;
  return `${Deno.build.os}-${arch}`;
}

/**
 * Locates the modeld binary for a data root. Never throws for missing
 * permissions; see {@linkcode LocateResult.skipped}.
 *
 * @param dataRoot The data root whose managed installs to consider.
 * @param options An abort signal for the version check.
 * @returns The binary path and its source, or no path.
 *
 * @example
 * ```ts
 * import { locateModeld } from "./locate.ts";
 * const { path, source } = await locateModeld("/home/me/.contenox");
 * console.log(path ? `${source}: ${path}` : "modeld not found");
 * ```
 */
export async function locateModeld(
  dataRoot: string,
  options: LocateOptions = {},
): Promise<LocateResult> {
  const skipped: string[] = [];

  const override = readEnv(BIN_ENV, skipped);
  if (override) {
    const found = await isFile(override, skipped);
    return found ? { path: override, source: "env", skipped } : { source: undefined, skipped };
  }

  const managed = await findManaged(dataRoot, skipped, options.signal);
  if (managed) {
    return { path: managed.launcher, source: "managed", versionChecked: managed.checked, skipped };
  }

  const onPath = await lookPath(skipped);
  if (onPath) return { path: onPath, source: "path", skipped };
  return { source: undefined, skipped };
}

function canRead(path: string, skipped: string[], flagValue = path): boolean {
  if (Deno.permissions.querySync({ name: "read", path }).state === "granted") return true;
  const flag = `--allow-read=${flagValue}`;
  if (!skipped.includes(flag)) skipped.push(flag);
  return false;
}

async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch {
    return undefined;
  }
}

/** Go's `fileExists`: the path exists (following links) and is not a directory. */
async function isFile(path: string, skipped: string[], flagValue = path): Promise<boolean> {
  if (!canRead(path, skipped, flagValue)) return false;
  const info = await statOrUndefined(path);
  return info !== undefined && !info.isDirectory;
}

// ---------------------------------------------------------------------------
// Managed installs (`contenox setup`)

interface ManagedInstall {
  launcher: string;
  version: string;
  checked: boolean;
}

async function findManaged(
  dataRoot: string,
  skipped: string[],
  signal?: AbortSignal,
): Promise<ManagedInstall | undefined> {
  const root = join(dataRoot, "modeld");
  if (!canRead(root, skipped, dataRoot)) return undefined;

  const current = await currentLauncher(root);
  if (current) {
    const inst = await checkLauncher(current, "", skipped, signal);
    if (inst) return inst;
  }

  const candidates: ManagedInstall[] = [];
  try {
    for await (const entry of Deno.readDir(root)) {
      if (!entry.isDirectory || entry.name === ".staging") continue;
      const launcher = join(root, entry.name, platform(), launcherName());
      const inst = await checkLauncher(launcher, entry.name, skipped, signal);
      if (inst) candidates.push(inst);
    }
  } catch {
    return undefined;
  }
  candidates.sort((a, b) =>
    compareVersions(b.version, a.version) ||
    (a.launcher < b.launcher ? 1 : a.launcher > b.launcher ? -1 : 0)
  );
  return candidates[0];
}

/** Resolves `<root>/current` (a symlink, or a file holding an install dir) to a launcher path. */
async function currentLauncher(root: string): Promise<string | undefined> {
  const pointer = join(root, "current");
  let target: string;
  try {
    const info = await Deno.lstat(pointer);
    if (info.isSymlink) {
      target = await Deno.readLink(pointer);
      if (!isAbsolute(target)) target = join(dirname(pointer), target);
    } else {
      target = (await Deno.readTextFile(pointer)).trim();
    }
  } catch {
    return undefined;
  }
  if (target === "") return undefined;
  return basename(target) === launcherName() ? target : join(target, launcherName());
}

/**
 * Accepts a launcher that exists and, when `--allow-run` for it is granted,
 * reports a non-empty version and a supported protocol. Without the grant the
 * launcher is accepted unchecked, and the flag is recorded in `skipped`.
 */
async function checkLauncher(
  launcher: string,
  dirVersion: string,
  skipped: string[],
  signal?: AbortSignal,
): Promise<ManagedInstall | undefined> {
  if (!(await isFile(launcher, skipped))) return undefined;
  if (Deno.permissions.querySync({ name: "run", command: launcher }).state !== "granted") {
    skipped.push(`--allow-run=${launcher}`);
    return { launcher, version: dirVersion, checked: false };
  }
  const version = await versionOf(launcher, signal);
  return version === undefined ? undefined : { launcher, version, checked: true };
}

/** Runs `<launcher> version --json`; the version when the protocol is supported. */
async function versionOf(launcher: string, signal?: AbortSignal): Promise<string | undefined> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), VERSION_TIMEOUT_MS);
  const onAbort = () => controller.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal?.aborted) return undefined;
    const out = await new Deno.Command(launcher, {
      args: ["version", "--json"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: controller.signal,
    }).output();
    if (!out.success) return undefined;
    const info = JSON.parse(new TextDecoder().decode(out.stdout));
    if (typeof info?.version !== "string" || info.version === "") return undefined;
    const protocol = info.protocol ?? PROTOCOL_MIN;
    if (!Number.isInteger(protocol) || protocol < PROTOCOL_MIN || protocol > PROTOCOL_MAX) {
      return undefined;
    }
    return info.version;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

function parseVersion(v: string): { nums: number[]; pre: string } | undefined {
  let s = v.trim();
  if (s.startsWith("v")) s = s.slice(1);
  s = s.split("+")[0];
  if (s === "") return undefined;
  const dash = s.indexOf("-");
  const pre = dash >= 0 ? s.slice(dash + 1) : "";
  const core = dash >= 0 ? s.slice(0, dash) : s;
  const nums: number[] = [];
  for (const part of core.split(".")) {
    if (!/^[+-]?\d+$/.test(part)) return undefined;
    nums.push(Number(part));
  }
  return { nums, pre };
}

/**
 * Compares two install versions like Go's `modeldinstall.compareVersions`:
 * numeric dot parts (missing = 0), then a release above any pre-release,
 * then pre-releases as strings; unparseable versions compare as strings.
 *
 * @param a A version such as `v0.36.0`.
 * @param b Another version.
 * @returns Negative, zero or positive as `a` is lower, equal or higher.
 *
 * @example
 * ```ts
 * import { compareVersions } from "./locate.ts";
 * console.assert(compareVersions("v0.36.0", "v0.9.1") > 0);
 * console.assert(compareVersions("1.0.0-rc1", "1.0.0") < 0);
 * ```
 */
export function compareVersions(a: string, b: string): number {
  const av = parseVersion(a);
  const bv = parseVersion(b);
  if (!av || !bv) return a < b ? -1 : a > b ? 1 : 0;
  for (let i = 0; i < Math.max(av.nums.length, bv.nums.length); i++) {
    const d = (av.nums[i] ?? 0) - (bv.nums[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  if (av.pre === "" && bv.pre !== "") return 1;
  if (av.pre !== "" && bv.pre === "") return -1;
  return av.pre < bv.pre ? -1 : av.pre > bv.pre ? 1 : 0;
}

// ---------------------------------------------------------------------------
// PATH

/**
 * Go's `exec.LookPath("modeld")`: the first absolute PATH directory holding an
 * executable `modeld` (on Windows, `modeld` plus a `PATHEXT` extension).
 * Relative PATH entries are skipped, as Go refuses results relative to the
 * working directory.
 */
async function lookPath(skipped: string[]): Promise<string | undefined> {
  const pathVar = readEnv("PATH", skipped);
  if (!pathVar) return undefined;
  const windows = Deno.build.os === "windows";
  let names = ["modeld"];
  if (windows) {
    const exts = readEnv("PATHEXT", []) ?? ".com;.exe;.bat;.cmd";
    names = exts.split(";").filter((e) => e !== "").map((e) => `modeld${e.toLowerCase()}`);
  }
  for (const dir of pathVar.split(delimiter)) {
    if (dir === "" || !isAbsolute(dir)) continue;
    if (!canRead(dir, skipped)) continue;
    for (const name of names) {
      const candidate = join(dir, name);
      const info = await statOrUndefined(candidate);
      if (!info || !info.isFile) continue;
      if (windows || ((info.mode ?? 0) & 0o111) !== 0) return candidate;
    }
  }
  return undefined;
}
