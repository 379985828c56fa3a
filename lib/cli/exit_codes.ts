/**
 * The CLI's exit codes: one per class of failure, so scripts can branch on
 * `$?` without parsing messages. {@linkcode exitCodeFor} maps any thrown value
 * to its code; {@linkcode EXIT_CODES_HELP} is the table printed by `--help`.
 *
 * @example
 * ```ts
 * import { ExitCode, exitCodeFor } from "./exit_codes.ts";
 * import { DaemonNotRunningError } from "@contenox/modeldconn";
 *
 * console.assert(exitCodeFor(new DaemonNotRunningError("/tmp/x")) === ExitCode.NotRunning);
 * ```
 *
 * @module
 */

import {
  AbortedError,
  ConnectionError,
  DaemonError,
  DaemonTooOldError,
  DaemonUnavailableError,
  InvalidArgumentError,
  isPermissionError,
  PermissionNeededError,
  TimeoutError,
} from "../errors.ts";
import { UsageError } from "./args.ts";

/**
 * The exit codes of the CLI.
 *
 * @example
 * ```ts
 * import { ExitCode } from "./exit_codes.ts";
 * if (ExitCode.Interrupted !== 130) throw new Error("unexpected");
 * ```
 */
export const ExitCode = {
  /** Success. */
  Ok: 0,
  /** Any other error (the daemon's `internal`, a protocol error, a bug). */
  Error: 1,
  /** Bad arguments: an unknown flag, a missing value, input the daemon can never accept. */
  Usage: 2,
  /** modeld is not installed, not running, or its lease is stale. */
  NotRunning: 3,
  /** modeld holds a lease but does not answer, the connection broke, or a call timed out. */
  Unreachable: 4,
  /** The running modeld predates the RPC the command needs. */
  TooOld: 5,
  /** The daemon refused: model not found, failed to load, busy, context overflow, … */
  Daemon: 6,
  /** A Deno permission is missing; the message names the `--allow-*` flag. */
  Permission: 7,
  /** Interrupted with Ctrl-C (SIGINT). */
  Interrupted: 130,
} as const;

/**
 * One of the {@linkcode ExitCode} values.
 *
 * @example
 * ```ts
 * import { ExitCode, type ExitCodeValue } from "./exit_codes.ts";
 * const code: ExitCodeValue = ExitCode.Usage;
 * ```
 */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/**
 * The exit code for a thrown value.
 *
 * @param err Anything thrown by a command.
 * @returns Its {@linkcode ExitCode}.
 *
 * @example
 * ```ts
 * import { exitCodeFor } from "./exit_codes.ts";
 * import { UsageError } from "./args.ts";
 * console.assert(exitCodeFor(new UsageError("missing --model")) === 2);
 * ```
 */
export function exitCodeFor(err: unknown): ExitCodeValue {
  if (err instanceof UsageError || err instanceof InvalidArgumentError) return ExitCode.Usage;
  if (err instanceof PermissionNeededError || isPermissionError(err)) return ExitCode.Permission;
  if (err instanceof DaemonUnavailableError) {
    return err.state === "unreachable" ? ExitCode.Unreachable : ExitCode.NotRunning;
  }
  if (err instanceof ConnectionError || err instanceof TimeoutError) return ExitCode.Unreachable;
  if (err instanceof DaemonTooOldError) return ExitCode.TooOld;
  if (err instanceof DaemonError) return ExitCode.Daemon;
  if (err instanceof AbortedError) return ExitCode.Interrupted;
  return ExitCode.Error;
}

/**
 * The exit code table, as printed by `--help`.
 *
 * @example
 * ```ts
 * import { EXIT_CODES_HELP } from "./exit_codes.ts";
 * console.assert(EXIT_CODES_HELP.includes("130  interrupted"));
 * ```
 */
export const EXIT_CODES_HELP: string = `Exit codes:
  0    ok
  1    other error (the daemon's internal error, a protocol error)
  2    bad arguments (unknown flag, missing value, no prompt, invalid input)
  3    modeld is not installed, not running, or its lease is stale
  4    modeld does not answer, the connection broke, or a call timed out (--timeout)
  5    the running modeld is too old for this command
  6    the daemon refused: model not found, failed to load, busy, context overflow, ...
  7    a Deno permission is missing (the message names the --allow-* flag to add)
  130  interrupted (Ctrl-C)`;
