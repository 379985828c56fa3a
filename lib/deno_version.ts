/**
 * The Deno versions known to crash when a daemon restarts under an open
 * HTTP/2 connection (2.9.4 to 2.9.6, denoland/deno#36788), and the one-time
 * warning the client prints at its first connection on one of them.
 *
 * @example
 * ```ts ignore
 * import { crashingDenoWarning } from "./deno_version.ts";
 * console.assert(crashingDenoWarning("2.9.5") !== undefined);
 * console.assert(crashingDenoWarning("2.9.3") === undefined);
 * ```
 *
 * @module
 */

/**
 * The Deno release this package is tested on.
 *
 * @example
 * ```ts ignore
 * console.log(`tested on Deno ${SUPPORTED_DENO}`);
 * ```
 */
export const SUPPORTED_DENO = "2.9.3";

/**
 * The warning for a Deno version known to crash on a daemon restart.
 *
 * @param version A Deno version (`Deno.version.deno`).
 * @returns The warning text, or `undefined` for a version without the crash.
 *
 * @example
 * ```ts ignore
 * const warning = crashingDenoWarning(Deno.version.deno);
 * ```
 */
export function crashingDenoWarning(version: string): string | undefined {
  const m = /^2\.9\.(\d+)(?:$|[-+])/.exec(version);
  if (!m || Number(m[1]) < 4 || Number(m[1]) > 6) return undefined;
  return `modeldconn: Deno ${version} can crash when modeld restarts under an open connection ` +
    `(denoland/deno#36788, Deno 2.9.4 to 2.9.6); use Deno ${SUPPORTED_DENO}`;
}

let warned = false;

/**
 * Prints {@linkcode crashingDenoWarning} with `console.warn`, once per process.
 *
 * @param version The Deno version (default: this process's).
 * @param warn Where to print (default `console.warn`).
 * @returns Whether it printed.
 *
 * @example
 * ```ts ignore
 * warnIfCrashingDeno(); // at the first connection
 * ```
 */
export function warnIfCrashingDeno(
  version: string = Deno.version.deno,
  warn: (message: string) => void = console.warn,
): boolean {
  if (warned) return false;
  const message = crashingDenoWarning(version);
  if (message === undefined) return false;
  warned = true;
  warn(message);
  return true;
}
