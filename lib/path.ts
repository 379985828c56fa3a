/**
 * The path functions the client needs (`join`, `basename`, `dirname`,
 * `extname`, `isAbsolute`, `delimiter`), with the results of `node:path` on
 * the same OS: POSIX rules, or Windows rules (drive letters, UNC roots, both
 * separators) on Windows. Importing `node:path` would start Deno's Node
 * compatibility layer, about 6 ms of a start-up whose whole budget is a few
 * more than an empty `deno run` (issue 10). Ported from Node's `lib/path.js`.
 *
 * @example
 * ```ts
 * import { basename, join } from "./path.ts";
 *
 * const lease = join("/home/me/.contenox/", "./modeld.lease");
 * console.log(lease, basename(lease)); // /home/me/.contenox/modeld.lease modeld.lease (on POSIX)
 * ```
 *
 * @module
 */

/** One OS's path rules. */
export interface PathRules {
  /** The `PATH` list separator: `:` or `;`. */
  readonly delimiter: string;
  /** Joins non-empty segments with the separator and normalises the result (`.`, `..`, repeats). */
  join(...segments: string[]): string;
  /** The last segment, without `suffix` when it ends with it. */
  basename(path: string, suffix?: string): string;
  /** Everything before the last segment (`.` when there is none). */
  dirname(path: string): string;
  /** The extension of the last segment, from its last `.` (`""` when none). */
  extname(path: string): string;
  /** Whether the path starts at a root (or, on Windows, a drive's root or a UNC share). */
  isAbsolute(path: string): boolean;
}

const SLASH = 47; // "/"
const BACKSLASH = 92; // "\"
const DOT = 46; // "."
const COLON = 58; // ":"

function isPosixSeparator(code: number): boolean {
  return code === SLASH;
}

function isWindowsSeparator(code: number): boolean {
  return code === SLASH || code === BACKSLASH;
}

function isDriveLetter(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}

/** Resolves `.` and `..` segments and repeated separators (Node's `normalizeString`). */
function normalizeSegments(
  path: string,
  allowAboveRoot: boolean,
  separator: string,
  isSeparator: (code: number) => boolean,
): string {
  let res = "";
  let lastSegmentLength = 0;
  let lastSlash = -1;
  let dots = 0;
  let code = 0;
  for (let i = 0; i <= path.length; ++i) {
    if (i < path.length) code = path.charCodeAt(i);
    else if (isSeparator(code)) break;
    else code = SLASH;
    if (isSeparator(code)) {
      if (lastSlash === i - 1 || dots === 1) {
        // A repeated separator or a "." segment: nothing to add.
      } else if (dots === 2) {
        if (
          res.length < 2 || lastSegmentLength !== 2 ||
          res.charCodeAt(res.length - 1) !== DOT || res.charCodeAt(res.length - 2) !== DOT
        ) {
          if (res.length > 2) {
            const lastSeparator = res.lastIndexOf(separator);
            if (lastSeparator === -1) {
              res = "";
              lastSegmentLength = 0;
            } else {
              res = res.slice(0, lastSeparator);
              lastSegmentLength = res.length - 1 - res.lastIndexOf(separator);
            }
            lastSlash = i;
            dots = 0;
            continue;
          } else if (res.length !== 0) {
            res = "";
            lastSegmentLength = 0;
            lastSlash = i;
            dots = 0;
            continue;
          }
        }
        if (allowAboveRoot) {
          res += res.length > 0 ? `${separator}..` : "..";
          lastSegmentLength = 2;
        }
      } else {
        if (res.length > 0) res += `${separator}${path.slice(lastSlash + 1, i)}`;
        else res = path.slice(lastSlash + 1, i);
        lastSegmentLength = i - lastSlash - 1;
      }
      lastSlash = i;
      dots = 0;
    } else if (code === DOT && dots !== -1) {
      ++dots;
    } else {
      dots = -1;
    }
  }
  return res;
}

/** The last segment of `path` from `start` on (Node's `basename` loops). */
function lastSegment(
  path: string,
  start: number,
  suffix: string | undefined,
  isSeparator: (code: number) => boolean,
): string {
  let end = -1;
  let matchedSlash = true;
  if (suffix !== undefined && suffix.length > 0 && suffix.length <= path.length) {
    if (suffix === path) return "";
    let extIdx = suffix.length - 1;
    let firstNonSlashEnd = -1;
    for (let i = path.length - 1; i >= start; --i) {
      const code = path.charCodeAt(i);
      if (isSeparator(code)) {
        if (!matchedSlash) {
          start = i + 1;
          break;
        }
      } else {
        if (firstNonSlashEnd === -1) {
          matchedSlash = false;
          firstNonSlashEnd = i + 1;
        }
        if (extIdx >= 0) {
          if (code === suffix.charCodeAt(extIdx)) {
            if (--extIdx === -1) end = i;
          } else {
            extIdx = -1;
            end = firstNonSlashEnd;
          }
        }
      }
    }
    if (start === end) end = firstNonSlashEnd;
    else if (end === -1) end = path.length;
    return path.slice(start, end);
  }
  for (let i = path.length - 1; i >= start; --i) {
    if (isSeparator(path.charCodeAt(i))) {
      if (!matchedSlash) {
        start = i + 1;
        break;
      }
    } else if (end === -1) {
      matchedSlash = false;
      end = i + 1;
    }
  }
  return end === -1 ? "" : path.slice(start, end);
}

/** The extension of the last segment of `path` from `start` on. */
function extension(path: string, start: number, isSeparator: (code: number) => boolean): string {
  let startDot = -1;
  let startPart = start;
  let end = -1;
  let matchedSlash = true;
  // 0: no dot seen yet; 1: a dot before the extension's; -1: a non-dot before it.
  let preDotState = 0;
  for (let i = path.length - 1; i >= start; --i) {
    const code = path.charCodeAt(i);
    if (isSeparator(code)) {
      if (!matchedSlash) {
        startPart = i + 1;
        break;
      }
      continue;
    }
    if (end === -1) {
      matchedSlash = false;
      end = i + 1;
    }
    if (code === DOT) {
      if (startDot === -1) startDot = i;
      else if (preDotState !== 1) preDotState = 1;
    } else if (startDot !== -1) {
      preDotState = -1;
    }
  }
  if (
    startDot === -1 || end === -1 || preDotState === 0 ||
    (preDotState === 1 && startDot === end - 1 && startDot === startPart + 1)
  ) {
    return "";
  }
  return path.slice(startDot, end);
}

function posixNormalize(path: string): string {
  if (path.length === 0) return ".";
  const absolute = path.charCodeAt(0) === SLASH;
  const trailingSeparator = path.charCodeAt(path.length - 1) === SLASH;
  let out = normalizeSegments(path, !absolute, "/", isPosixSeparator);
  if (out.length === 0) {
    if (absolute) return "/";
    return trailingSeparator ? "./" : ".";
  }
  if (trailingSeparator) out += "/";
  return absolute ? `/${out}` : out;
}

/**
 * POSIX rules, as `node:path` has them on Linux and macOS.
 *
 * @example
 * ```ts
 * import { posixPath } from "./path.ts";
 * console.assert(posixPath.join("/a/", "../b", "c") === "/b/c");
 * ```
 */
export const posixPath: PathRules = Object.freeze({
  delimiter: ":",
  join(...segments: string[]): string {
    const parts = segments.filter((s) => s.length > 0);
    return parts.length === 0 ? "." : posixNormalize(parts.join("/"));
  },
  basename(path: string, suffix?: string): string {
    return lastSegment(path, 0, suffix, isPosixSeparator);
  },
  dirname(path: string): string {
    if (path.length === 0) return ".";
    const hasRoot = path.charCodeAt(0) === SLASH;
    let end = -1;
    let matchedSlash = true;
    for (let i = path.length - 1; i >= 1; --i) {
      if (path.charCodeAt(i) === SLASH) {
        if (!matchedSlash) {
          end = i;
          break;
        }
      } else {
        matchedSlash = false;
      }
    }
    if (end === -1) return hasRoot ? "/" : ".";
    if (hasRoot && end === 1) return "//";
    return path.slice(0, end);
  },
  extname(path: string): string {
    return extension(path, 0, isPosixSeparator);
  },
  isAbsolute(path: string): boolean {
    return path.length > 0 && path.charCodeAt(0) === SLASH;
  },
});

/**
 * A `\\server\share` prefix: where the server name starts and ends and where
 * the share name starts and ends (`shareEnd === path.length`: nothing follows).
 */
interface UncPrefix {
  server: string;
  shareStart: number;
  shareEnd: number;
}

/** The UNC prefix of a path that starts with two separators, when it has one. */
function uncPrefix(path: string): UncPrefix | undefined {
  const len = path.length;
  let j = 2;
  while (j < len && !isWindowsSeparator(path.charCodeAt(j))) j++;
  if (j >= len || j === 2) return undefined;
  const server = path.slice(2, j);
  const afterServer = j;
  while (j < len && isWindowsSeparator(path.charCodeAt(j))) j++;
  if (j >= len || j === afterServer) return undefined;
  const shareStart = j;
  while (j < len && !isWindowsSeparator(path.charCodeAt(j))) j++;
  return { server, shareStart, shareEnd: j };
}

/** Where a Windows path's root ends: a separator, `C:`, `C:\`, a UNC share or a device (`\\.\`). */
interface WindowsRoot {
  /** The drive (`C:`), UNC share (`\\server\share`) or device namespace (`\\.`), normalised. */
  device?: string;
  /** Index of the first character after the root. */
  rootEnd: number;
  absolute: boolean;
  /** The path is a UNC root and nothing else, already normalised. */
  uncOnly?: string;
}

function windowsRoot(path: string): WindowsRoot {
  const code = path.charCodeAt(0);
  if (isWindowsSeparator(code)) {
    if (!isWindowsSeparator(path.charCodeAt(1))) return { rootEnd: 1, absolute: true };
    const unc = uncPrefix(path);
    if (!unc) return { rootEnd: 0, absolute: true };
    if (unc.server === "." || unc.server === "?") {
      // A device path (`\\.\pipe\x`, `\\?\C:\x`): the root is `\\.\`.
      return { device: `\\\\${unc.server}`, rootEnd: 4, absolute: true };
    }
    const share = path.slice(unc.shareStart, unc.shareEnd);
    if (unc.shareEnd === path.length) {
      return { rootEnd: path.length, absolute: true, uncOnly: `\\\\${unc.server}\\${share}\\` };
    }
    return { device: `\\\\${unc.server}\\${share}`, rootEnd: unc.shareEnd, absolute: true };
  }
  if (isDriveLetter(code) && path.charCodeAt(1) === COLON) {
    const absolute = path.length > 2 && isWindowsSeparator(path.charCodeAt(2));
    return { device: path.slice(0, 2), rootEnd: absolute ? 3 : 2, absolute };
  }
  return { rootEnd: 0, absolute: false };
}

function windowsNormalize(path: string): string {
  const len = path.length;
  if (len === 0) return ".";
  if (len === 1) return isPosixSeparator(path.charCodeAt(0)) ? "\\" : path;
  const root = windowsRoot(path);
  if (root.uncOnly !== undefined) return root.uncOnly;
  let tail = root.rootEnd < len
    ? normalizeSegments(path.slice(root.rootEnd), !root.absolute, "\\", isWindowsSeparator)
    : "";
  if (tail.length === 0 && !root.absolute) tail = ".";
  if (tail.length > 0 && isWindowsSeparator(path.charCodeAt(len - 1))) tail += "\\";
  if (!root.absolute && root.device === undefined && path.includes(":")) {
    // A relative path must not normalise into one Windows reads as a drive
    // path (`a/../C:x`, CVE-2024-36139): keep it relative with `.\`.
    if (tail.length >= 2 && isDriveLetter(tail.charCodeAt(0)) && tail.charCodeAt(1) === COLON) {
      return `.\\${tail}`;
    }
    for (let i = path.indexOf(":"); i !== -1; i = path.indexOf(":", i + 1)) {
      if (i === len - 1 || isWindowsSeparator(path.charCodeAt(i + 1))) return `.\\${tail}`;
    }
  }
  if (root.device === undefined) return root.absolute ? `\\${tail}` : tail;
  return root.absolute ? `${root.device}\\${tail}` : `${root.device}${tail}`;
}

/** 2 after a drive letter and colon, else 0: where the last segment may start. */
function afterDrive(path: string): number {
  return path.length >= 2 && isDriveLetter(path.charCodeAt(0)) && path.charCodeAt(1) === COLON
    ? 2
    : 0;
}

/**
 * Windows rules, as `node:path` has them on Windows.
 *
 * @example
 * ```ts
 * import { windowsPath } from "./path.ts";
 * console.assert(windowsPath.join("C:\\Users\\me", "..", ".contenox") === "C:\\Users\\.contenox");
 * ```
 */
export const windowsPath: PathRules = Object.freeze({
  delimiter: ";",
  join(...segments: string[]): string {
    const parts = segments.filter((s) => s.length > 0);
    if (parts.length === 0) return ".";
    let joined = parts.join("\\");
    // A first part that does not itself start a UNC root must not become one
    // through the joined separators.
    const first = parts[0];
    let needsReplace = true;
    let slashCount = 0;
    if (isWindowsSeparator(first.charCodeAt(0))) {
      ++slashCount;
      if (first.length > 1 && isWindowsSeparator(first.charCodeAt(1))) {
        ++slashCount;
        if (first.length > 2) {
          if (isWindowsSeparator(first.charCodeAt(2))) ++slashCount;
          else needsReplace = false; // a UNC path in the first part
        }
      }
    }
    if (needsReplace) {
      while (slashCount < joined.length && isWindowsSeparator(joined.charCodeAt(slashCount))) {
        slashCount++;
      }
      if (slashCount >= 2) joined = `\\${joined.slice(slashCount)}`;
    }
    return windowsNormalize(joined);
  },
  basename(path: string, suffix?: string): string {
    return lastSegment(path, afterDrive(path), suffix, isWindowsSeparator);
  },
  dirname(path: string): string {
    const len = path.length;
    if (len === 0) return ".";
    if (len === 1) return isWindowsSeparator(path.charCodeAt(0)) ? path : ".";
    let rootEnd = -1;
    let offset = 0;
    const code = path.charCodeAt(0);
    if (isWindowsSeparator(code)) {
      rootEnd = offset = 1;
      const unc = isWindowsSeparator(path.charCodeAt(1)) ? uncPrefix(path) : undefined;
      if (unc?.shareEnd === len) return path; // a UNC root only
      // After a UNC root, its separator counts as a root of its own.
      if (unc) rootEnd = offset = unc.shareEnd + 1;
    } else if (isDriveLetter(code) && path.charCodeAt(1) === COLON) {
      rootEnd = offset = len > 2 && isWindowsSeparator(path.charCodeAt(2)) ? 3 : 2;
    }
    let end = -1;
    let matchedSlash = true;
    for (let i = len - 1; i >= offset; --i) {
      if (isWindowsSeparator(path.charCodeAt(i))) {
        if (!matchedSlash) {
          end = i;
          break;
        }
      } else {
        matchedSlash = false;
      }
    }
    if (end === -1) {
      if (rootEnd === -1) return ".";
      end = rootEnd;
    }
    return path.slice(0, end);
  },
  extname(path: string): string {
    return extension(path, afterDrive(path), isWindowsSeparator);
  },
  isAbsolute(path: string): boolean {
    const len = path.length;
    if (len === 0) return false;
    const code = path.charCodeAt(0);
    return isWindowsSeparator(code) ||
      (len > 2 && isDriveLetter(code) && path.charCodeAt(1) === COLON &&
        isWindowsSeparator(path.charCodeAt(2)));
  },
});

const host: PathRules = Deno.build.os === "windows" ? windowsPath : posixPath;

/**
 * The `PATH` list separator of this OS.
 *
 * @example
 * ```ts
 * import { delimiter } from "./path.ts";
 * console.assert(delimiter === (Deno.build.os === "windows" ? ";" : ":"));
 * ```
 */
export const delimiter: string = host.delimiter;

/**
 * Joins path segments with this OS's separator and normalises the result.
 *
 * @param segments The segments; empty ones are skipped.
 * @returns The joined path, `.` when every segment is empty.
 *
 * @example
 * ```ts
 * import { join } from "./path.ts";
 * console.log(join("/data", "modeld", "../modeld.lease")); // /data/modeld.lease (on POSIX)
 * ```
 */
export function join(...segments: string[]): string {
  return host.join(...segments);
}

/**
 * The last segment of a path.
 *
 * @param path The path.
 * @param suffix An extension to remove when the segment ends with it.
 * @returns The segment (trailing separators ignored).
 *
 * @example
 * ```ts
 * import { basename } from "./path.ts";
 * console.assert(basename("/models/tiny.gguf", ".gguf") === "tiny");
 * ```
 */
export function basename(path: string, suffix?: string): string {
  return host.basename(path, suffix);
}

/**
 * The directory part of a path.
 *
 * @param path The path.
 * @returns Everything before the last segment, `.` when there is no directory.
 *
 * @example
 * ```ts
 * import { dirname } from "./path.ts";
 * console.log(dirname("/data/modeld/current")); // /data/modeld (on POSIX)
 * ```
 */
export function dirname(path: string): string {
  return host.dirname(path);
}

/**
 * The extension of a path's last segment.
 *
 * @param path The path.
 * @returns From the last `.` on (`.gguf`), or `""`.
 *
 * @example
 * ```ts
 * import { extname } from "./path.ts";
 * console.assert(extname("/models/tiny.gguf") === ".gguf" && extname("/models/.hidden") === "");
 * ```
 */
export function extname(path: string): string {
  return host.extname(path);
}

/**
 * Whether a path is absolute on this OS.
 *
 * @param path The path.
 * @returns `true` for `/x` (and `C:\x`, `\\server\share` on Windows).
 *
 * @example
 * ```ts
 * import { isAbsolute } from "./path.ts";
 * console.assert(!isAbsolute("relative/dir"));
 * ```
 */
export function isAbsolute(path: string): boolean {
  return host.isAbsolute(path);
}
