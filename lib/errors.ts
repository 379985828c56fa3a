/**
 * Error classes for every way a modeld call can fail: probe states (the daemon
 * is not there), daemon error tokens (the daemon said no), transport failures
 * (the connection broke, a deadline passed, the caller aborted) and missing
 * Deno permissions. All extend {@linkcode ModeldError}; branch on the class with
 * `instanceof` or on the stable {@linkcode ModeldError.code}.
 *
 * @example Branch on the class
 * ```ts
 * import { ModeldError, ModelBusyError } from "@contenox/modeldconn";
 *
 * function describe(err: unknown): string {
 *   if (err instanceof ModelBusyError) return "busy, try later";
 *   if (err instanceof ModeldError) return `${err.code}: ${err.message}`;
 *   return String(err);
 * }
 * ```
 *
 * @module
 */

/**
 * The stable machine-readable class of a {@linkcode ModeldError}. */
export type ModeldErrorCode =
  | ProbeFailureState
  | DaemonErrorToken
  | "permission_needed"
  | "unavailable"
  | "timeout"
  | "aborted"
  | "unimplemented"
  | "daemon_too_old"
  | "invalid_argument"
  | "internal"
  | "protocol"
  | "lease_unreadable";

/** Options every {@linkcode ModeldError} constructor takes. */
export interface ModeldErrorOptions {
  /** The underlying error, kept for debugging. */
  cause?: unknown;
}

/**
 * The root of every error this package throws.
 *
 * @example
 * ```ts
 * import { ModeldError } from "@contenox/modeldconn";
 * const err = new ModeldError("internal", "Cannot decode: the daemon crashed");
 * console.assert(err instanceof Error && err.code === "internal");
 * ```
 */
export class ModeldError extends Error {
  /** The stable class of the failure; see {@linkcode ModeldErrorCode}. */
  readonly code: ModeldErrorCode;
  /** Whether the same call may succeed if tried again (after a pause or a re-dial). */
  readonly retryable: boolean;

  /**
   * Creates the error.
   *
   * @param code The stable class of the failure.
   * @param message What cannot be done and why, in sentence case.
   * @param options The cause, and whether a retry can help.
   */
  constructor(
    code: ModeldErrorCode,
    message: string,
    options: ModeldErrorOptions & { retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

// ---------------------------------------------------------------------------
// Probe states

/** The probe states that mean no usable daemon is there. */
export type ProbeFailureState = "not_installed" | "not_running" | "stale" | "unreachable";

/**
 * No daemon answers for the data root. Subclasses name the probe state.
 *
 * @example
 * ```ts
 * import { DaemonUnavailableError, DaemonNotRunningError } from "@contenox/modeldconn";
 * const err = new DaemonNotRunningError("/home/me/.contenox");
 * console.assert(err instanceof DaemonUnavailableError && err.state === "not_running");
 * ```
 */
export class DaemonUnavailableError extends ModeldError {
  /** The probe state. */
  readonly state: ProbeFailureState;
  /** The data root whose lease was read. */
  readonly dataRoot: string;

  /**
   * Creates the error.
   *
   * @param state The probe state.
   * @param dataRoot The data root whose lease was read.
   * @param message The message.
   * @param options The cause and retryability.
   */
  constructor(
    state: ProbeFailureState,
    dataRoot: string,
    message: string,
    options: ModeldErrorOptions & { retryable?: boolean } = {},
  ) {
    super(state, message, options);
    this.state = state;
    this.dataRoot = dataRoot;
  }
}

/**
 * Options of the "no owner" errors: the lease that was there but could not be
 * read, when that is why there is no owner.
 */
export interface UnreadableLeaseOptions extends ModeldErrorOptions {
  /** The lease file that exists but is not a lease (also the error's `cause`). */
  unreadableLease?: LeaseUnreadableError;
}

function noLease(dataRoot: string, unreadable: LeaseUnreadableError | undefined): string {
  return unreadable
    ? `the lease file ${unreadable.path} is unreadable (${unreadable.reason})`
    : `no lease in ${dataRoot}`;
}

/**
 * The lease file exists but cannot be a modeld lease: not a regular file (a
 * directory, a FIFO, a device, a socket), larger than any lease, not JSON, a
 * field of the wrong type, or a field no modeld writes (an instance id that is
 * not one). Code `lease_unreadable`. The client reports it as "not running"
 * (the Go verdict: such a file names no owner) with this error as the cause.
 *
 * @example
 * ```ts
 * import { LeaseUnreadableError } from "@contenox/modeldconn";
 * const err = new LeaseUnreadableError("/home/me/.contenox/modeld.lease", "it is a directory");
 * console.assert(err.code === "lease_unreadable" && err.message.includes("directory"));
 * ```
 */
export class LeaseUnreadableError extends ModeldError {
  /** The lease file's path. */
  readonly path: string;
  /** Why it is not a lease, e.g. `it is a FIFO (named pipe), not a file`. */
  readonly reason: string;

  /**
   * Creates the error.
   *
   * @param path The lease file's path.
   * @param reason Why it is not a lease.
   * @param options The cause (an I/O error).
   */
  constructor(path: string, reason: string, options: ModeldErrorOptions = {}) {
    super(
      "lease_unreadable",
      `Cannot read the modeld lease ${path}: ${reason} (remove the file, or restart modeld, ` +
        "which replaces a corrupt lease)",
      options,
    );
    this.path = path;
    this.reason = reason;
  }
}

/**
 * No lease and no modeld binary could be found.
 *
 * @example
 * ```ts
 * import { DaemonNotInstalledError } from "@contenox/modeldconn";
 * console.log(new DaemonNotInstalledError("/home/me/.contenox").message);
 * ```
 */
export class DaemonNotInstalledError extends DaemonUnavailableError {
  /**
   * Creates the error.
   *
   * @param dataRoot The data root whose lease was read.
   * @param options The cause.
   */
  constructor(dataRoot: string, options: UnreadableLeaseOptions = {}) {
    const { unreadableLease, ...rest } = options;
    super(
      "not_installed",
      dataRoot,
      `modeld is not installed: ${noLease(dataRoot, unreadableLease)} and no modeld binary found ` +
        "(set CONTENOX_MODELD_BIN, run `contenox setup`, or put modeld on PATH)",
      { ...rest, cause: unreadableLease ?? rest.cause },
    );
  }
}

/**
 * modeld is installed but holds no lease on this data root.
 *
 * @example
 * ```ts
 * import { DaemonNotRunningError } from "@contenox/modeldconn";
 * console.log(new DaemonNotRunningError("/home/me/.contenox").message);
 * ```
 */
export class DaemonNotRunningError extends DaemonUnavailableError {
  /**
   * Creates the error.
   *
   * @param dataRoot The data root whose lease was read.
   * @param options The cause.
   */
  constructor(dataRoot: string, options: UnreadableLeaseOptions = {}) {
    const { unreadableLease, ...rest } = options;
    const start = `\`modeld serve --data-root ${dataRoot}\``;
    super(
      "not_running",
      dataRoot,
      `modeld is not running: ${noLease(dataRoot, unreadableLease)} ` +
        (unreadableLease
          ? `(remove it, or start modeld with ${start}, which replaces a corrupt lease)`
          : `(start it with ${start})`),
      { ...rest, cause: unreadableLease ?? rest.cause, retryable: true },
    );
  }
}

/**
 * The lease exists but expired: the daemon probably crashed.
 *
 * @example
 * ```ts
 * import { DaemonStaleError } from "@contenox/modeldconn";
 * console.log(new DaemonStaleError("/home/me/.contenox", "abc").message);
 * ```
 */
export class DaemonStaleError extends DaemonUnavailableError {
  /** The instance id of the expired lease. */
  readonly instanceId: string;

  /**
   * Creates the error.
   *
   * @param dataRoot The data root whose lease was read.
   * @param instanceId The instance id of the expired lease.
   * @param options The cause.
   */
  constructor(dataRoot: string, instanceId: string, options: ModeldErrorOptions = {}) {
    super(
      "stale",
      dataRoot,
      `modeld owner is stale (the daemon may have crashed): lease of instance ${instanceId} ` +
        `in ${dataRoot} expired (restart it with \`modeld serve --data-root ${dataRoot}\`)`,
      { ...options, retryable: true },
    );
    this.instanceId = instanceId;
  }
}

/**
 * A live lease names an endpoint that does not answer a health probe, or the
 * process answering is not the lease holder.
 *
 * @example
 * ```ts
 * import { DaemonUnreachableError } from "@contenox/modeldconn";
 * console.log(new DaemonUnreachableError("/home/me/.contenox", "127.0.0.1:1", "connection refused").message);
 * ```
 */
export class DaemonUnreachableError extends DaemonUnavailableError {
  /** The endpoint the lease names ("" when it names none). */
  readonly endpoint: string;

  /**
   * Creates the error.
   *
   * @param dataRoot The data root whose lease was read.
   * @param endpoint The endpoint the lease names.
   * @param reason Why the health probe failed.
   * @param options The cause.
   */
  constructor(
    dataRoot: string,
    endpoint: string,
    reason: string,
    options: ModeldErrorOptions = {},
  ) {
    super(
      "unreachable",
      dataRoot,
      `modeld holds a lease but does not answer a health probe at ${
        endpoint || "(no endpoint)"
      }: ` +
        `${reason}`,
      { ...options, retryable: true },
    );
    this.endpoint = endpoint;
  }
}

// ---------------------------------------------------------------------------
// Permissions

/** A Deno permission flag this package may need. */
export type PermissionFlag = "--allow-read" | "--allow-net" | "--allow-env" | "--allow-run";

/**
 * The script lacks a Deno permission. The message names the exact flag to add.
 *
 * @example
 * ```ts
 * import { PermissionNeededError } from "@contenox/modeldconn";
 * const err = new PermissionNeededError("--allow-read", "/home/me/.contenox", "read the modeld lease");
 * console.assert(err.flagWithValue === "--allow-read=/home/me/.contenox");
 * ```
 */
export class PermissionNeededError extends ModeldError {
  /** The flag to add, without its value. */
  readonly flag: PermissionFlag;
  /** The value the flag needs (a path, a host, a variable name). */
  readonly value: string;

  /**
   * Creates the error.
   *
   * @param flag The flag to add.
   * @param value The value the flag needs.
   * @param purpose What the permission was needed for.
   * @param options The cause (usually a `Deno.errors.NotCapable`).
   */
  constructor(
    flag: PermissionFlag,
    value: string,
    purpose: string,
    options: ModeldErrorOptions = {},
  ) {
    super(
      "permission_needed",
      `Cannot ${purpose}: Deno permission missing (run with ${flag}=${value})`,
      options,
    );
    this.flag = flag;
    this.value = value;
  }

  /** The flag and its value, ready to paste: `--allow-read=/path`. */
  get flagWithValue(): string {
    return `${this.flag}=${this.value}`;
  }
}

/**
 * Whether `err` is Deno's refusal of a permission (`NotCapable`, or
 * `PermissionDenied` from older Deno versions).
 *
 * @param err Any thrown value.
 * @returns True when the error means a missing `--allow-*` grant.
 *
 * @example
 * ```ts
 * import { isPermissionError } from "@contenox/modeldconn";
 * console.assert(!isPermissionError(new Error("x")));
 * ```
 */
export function isPermissionError(err: unknown): boolean {
  return err instanceof Deno.errors.NotCapable ||
    (err instanceof Error && err.name === "NotCapable");
}

// ---------------------------------------------------------------------------
// Daemon error tokens (contract section 6.2)

/** Every error token a modeld daemon sends, v0.32.3 through v0.36. */
export type DaemonErrorToken =
  | "context_canceled"
  | "deadline_exceeded"
  | "stale_fence"
  | "not_owner"
  | "session_closed"
  | "context_overflow"
  | "session_fatal"
  | "model_busy"
  | "model_not_active"
  | "model_switch_required"
  | "device_busy"
  | "model_load_failed"
  | "insufficient_memory"
  | "slot_generation_stale"
  | "backend_mismatch"
  | "unsupported_feature"
  | "manifest_mismatch"
  | "model_not_found"
  | "digest_mismatch"
  | "unsupported_model_type";

/** Where a daemon error came from, kept on every {@linkcode DaemonError}. */
export interface DaemonErrorInit extends ModeldErrorOptions {
  /** The gRPC status code number (0 for an in-stream error chunk). */
  grpcCode: number;
  /** The daemon's message after the token prefix. */
  detail: string;
  /** The RPC that failed, e.g. `OpenSession`. */
  rpc?: string;
}

/**
 * The daemon refused a call with one of its error tokens. Subclasses exist for
 * every token; branch with `instanceof` or on {@linkcode DaemonError.token}.
 *
 * @example
 * ```ts
 * import { DaemonError, SessionClosedError } from "@contenox/modeldconn";
 * const err = new SessionClosedError({ grpcCode: 9, detail: "session is closed" });
 * console.assert(err instanceof DaemonError && err.token === "session_closed");
 * ```
 */
export class DaemonError extends ModeldError {
  /** The daemon's error token. */
  readonly token: DaemonErrorToken;
  /** The gRPC status code number (0 when the error came inside a Decode stream). */
  readonly grpcCode: number;
  /** The daemon's message after the token prefix. */
  readonly detail: string;
  /** The RPC that failed, when known. */
  readonly rpc?: string;

  /**
   * Creates the error.
   *
   * @param token The daemon's error token.
   * @param init Where the error came from.
   * @param hint What the caller can do about it, appended to the message.
   * @param retryable Whether a retry can help.
   */
  constructor(token: DaemonErrorToken, init: DaemonErrorInit, hint = "", retryable = false) {
    const where = init.rpc ? `${init.rpc} failed: ` : "";
    super(token, `${where}${token}: ${init.detail}${hint ? ` (${hint})` : ""}`, {
      cause: init.cause,
      retryable,
    });
    this.token = token;
    this.grpcCode = init.grpcCode;
    this.detail = init.detail;
    if (init.rpc !== undefined) this.rpc = init.rpc;
  }
}

/** The daemon's handler saw its context cancelled (`context_canceled`).
 *
 * @example
 * ```ts
 * import { DaemonCanceledError } from "@contenox/modeldconn";
 * const err = new DaemonCanceledError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "context_canceled" && err.code === "context_canceled");
 * ```
 */
export class DaemonCanceledError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("context_canceled", init, "", true);
  }
}
/**
 * The daemon's handler ran past its deadline (`deadline_exceeded`).
 *
 * @example
 * ```ts
 * import { DaemonDeadlineError } from "@contenox/modeldconn";
 * const err = new DaemonDeadlineError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "deadline_exceeded" && err.code === "deadline_exceeded");
 * ```
 */
export class DaemonDeadlineError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("deadline_exceeded", init, "use a longer timeout", true);
  }
}
/**
 * The owner fence did not match the serving instance (`stale_fence`): the daemon restarted.
 *
 * @example
 * ```ts
 * import { StaleFenceError } from "@contenox/modeldconn";
 * const err = new StaleFenceError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "stale_fence" && err.code === "stale_fence");
 * ```
 */
export class StaleFenceError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("stale_fence", init, "the daemon was restarted; open a new session", true);
  }
}
/**
 * Reserved by the daemon (`not_owner`); no server path sends it today.
 *
 * @example
 * ```ts
 * import { NotOwnerError } from "@contenox/modeldconn";
 * const err = new NotOwnerError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "not_owner" && err.code === "not_owner");
 * ```
 */
export class NotOwnerError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("not_owner", init);
  }
}
/**
 * The session handle is closed or unknown (`session_closed`).
 *
 * @example
 * ```ts
 * import { SessionClosedError } from "@contenox/modeldconn";
 * const err = new SessionClosedError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "session_closed" && err.code === "session_closed");
 * ```
 */
export class SessionClosedError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("session_closed", init, "open a new session", true);
  }
}
/**
 * The session was poisoned by the backend (`session_fatal`).
 *
 * @example
 * ```ts
 * import { SessionFatalError } from "@contenox/modeldconn";
 * const err = new SessionFatalError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "session_fatal" && err.code === "session_fatal");
 * ```
 */
export class SessionFatalError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("session_fatal", init, "close it and open a new session", true);
  }
}
/**
 * The single model slot is in use (`model_busy`).
 *
 * @example
 * ```ts
 * import { ModelBusyError } from "@contenox/modeldconn";
 * const err = new ModelBusyError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "model_busy" && err.code === "model_busy");
 * ```
 */
export class ModelBusyError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super(
      "model_busy",
      init,
      "close the open session or wait for it to finish; a model loaded with loadModel() " +
        "stays until unloadModel()",
      true,
    );
  }
}
/**
 * The slot holds no model for this handle (`model_not_active`).
 *
 * @example
 * ```ts
 * import { ModelNotActiveError } from "@contenox/modeldconn";
 * const err = new ModelNotActiveError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "model_not_active" && err.code === "model_not_active");
 * ```
 */
export class ModelNotActiveError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("model_not_active", init, "load the model and reopen the session", true);
  }
}
/**
 * A different idle model is resident (`model_switch_required`).
 *
 * @example
 * ```ts
 * import { ModelSwitchRequiredError } from "@contenox/modeldconn";
 * const err = new ModelSwitchRequiredError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "model_switch_required" && err.code === "model_switch_required");
 * ```
 */
export class ModelSwitchRequiredError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("model_switch_required", init, "call loadModel first", true);
  }
}
/**
 * Another daemon holds the accelerator (`device_busy`).
 *
 * @example
 * ```ts
 * import { DeviceBusyError } from "@contenox/modeldconn";
 * const err = new DeviceBusyError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "device_busy" && err.code === "device_busy");
 * ```
 */
export class DeviceBusyError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("device_busy", init, "another modeld holds the device", true);
  }
}
/**
 * The backend could not load the model (`model_load_failed`).
 *
 * @example
 * ```ts
 * import { ModelLoadFailedError } from "@contenox/modeldconn";
 * const err = new ModelLoadFailedError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "model_load_failed" && err.code === "model_load_failed");
 * ```
 */
export class ModelLoadFailedError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("model_load_failed", init);
  }
}
/**
 * The capacity planner refused the model (`insufficient_memory`).
 *
 * @example
 * ```ts
 * import { InsufficientMemoryError } from "@contenox/modeldconn";
 * const err = new InsufficientMemoryError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "insufficient_memory" && err.code === "insufficient_memory");
 * ```
 */
export class InsufficientMemoryError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("insufficient_memory", init, "use a smaller NumCtx or model");
  }
}
/**
 * The slot moved on since the handle or generation was issued (`slot_generation_stale`).
 *
 * @example
 * ```ts
 * import { SlotGenerationStaleError } from "@contenox/modeldconn";
 * const err = new SlotGenerationStaleError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "slot_generation_stale" && err.code === "slot_generation_stale");
 * ```
 */
export class SlotGenerationStaleError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("slot_generation_stale", init, "open a new session", true);
  }
}
/**
 * The model type is not what this daemon serves (`backend_mismatch`).
 *
 * @example
 * ```ts
 * import { BackendMismatchError } from "@contenox/modeldconn";
 * const err = new BackendMismatchError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "backend_mismatch" && err.code === "backend_mismatch");
 * ```
 */
export class BackendMismatchError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("backend_mismatch", init, "check the model type against `backend()`");
  }
}
/**
 * The daemon does not offer the requested feature (`unsupported_feature`).
 *
 * @example
 * ```ts
 * import { UnsupportedFeatureError } from "@contenox/modeldconn";
 * const err = new UnsupportedFeatureError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "unsupported_feature" && err.code === "unsupported_feature");
 * ```
 */
export class UnsupportedFeatureError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("unsupported_feature", init);
  }
}
/**
 * The suffix manifest does not fit the resident prefix (`manifest_mismatch`).
 *
 * @example
 * ```ts
 * import { ManifestMismatchError } from "@contenox/modeldconn";
 * const err = new ManifestMismatchError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "manifest_mismatch" && err.code === "manifest_mismatch");
 * ```
 */
export class ManifestMismatchError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("manifest_mismatch", init, "call ensurePrefix with the same manifest first");
  }
}
/**
 * The model name is not in the daemon's store (`model_not_found`).
 *
 * @example
 * ```ts
 * import { ModelNotFoundError } from "@contenox/modeldconn";
 * const err = new ModelNotFoundError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "model_not_found" && err.code === "model_not_found");
 * ```
 */
export class ModelNotFoundError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super(
      "model_not_found",
      init,
      init.rpc === "RemoveModel"
        ? "nothing to remove; listModels() shows what is stored"
        : "push it with pushModel or pass a path",
    );
  }
}
/**
 * The bytes do not match the asserted digest (`digest_mismatch`).
 *
 * @example
 * ```ts
 * import { DigestMismatchError } from "@contenox/modeldconn";
 * const err = new DigestMismatchError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "digest_mismatch" && err.code === "digest_mismatch");
 * ```
 */
export class DigestMismatchError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("digest_mismatch", init);
  }
}
/**
 * The model type is neither `llama` nor `openvino` (`unsupported_model_type`).
 *
 * @example
 * ```ts
 * import { UnsupportedModelTypeError } from "@contenox/modeldconn";
 * const err = new UnsupportedModelTypeError({ grpcCode: 9, detail: "…", rpc: "OpenSession" });
 * console.assert(err.token === "unsupported_model_type" && err.code === "unsupported_model_type");
 * ```
 */
export class UnsupportedModelTypeError extends DaemonError {
  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   */
  constructor(init: DaemonErrorInit) {
    super("unsupported_model_type", init, 'use type "llama" or "openvino"');
  }
}

/** The counts a `context_overflow` error carries (daemons v0.33.0+). */
export interface ContextOverflowCounts {
  /** Where it overflowed: `prefix`, `suffix` or `decode` ("" when unknown). */
  stage: string;
  /** Tokens resident before the step. */
  residentTokens: number;
  /** Tokens the step needed to add. */
  additionalTokens: number;
  /** The session's context window. */
  numCtx: number;
}

/**
 * The prefix, suffix or decode does not fit the context window
 * (`context_overflow`). Counts are 0 when the daemon sent none (v0.32.3).
 *
 * @example
 * ```ts
 * import { ContextOverflowError } from "@contenox/modeldconn";
 * const err = new ContextOverflowError({ grpcCode: 8, detail: "exceeded" }, {
 *   stage: "prefix", residentTokens: 2, additionalTokens: 5, numCtx: 4,
 * });
 * console.assert(err.numCtx === 4);
 * ```
 */
export class ContextOverflowError extends DaemonError implements ContextOverflowCounts {
  /** Where it overflowed: `prefix`, `suffix` or `decode` ("" when unknown). */
  readonly stage: string;
  /** Tokens resident before the step. */
  readonly residentTokens: number;
  /** Tokens the step needed to add. */
  readonly additionalTokens: number;
  /** The session's context window. */
  readonly numCtx: number;

  /**
   * Creates the error.
   *
   * @param init Where the error came from.
   * @param counts The overflow counts, when the daemon sent them.
   */
  constructor(init: DaemonErrorInit, counts?: Partial<ContextOverflowCounts>) {
    super("context_overflow", init, "shorten the context or open the session with a larger NumCtx");
    this.stage = counts?.stage ?? "";
    this.residentTokens = counts?.residentTokens ?? 0;
    this.additionalTokens = counts?.additionalTokens ?? 0;
    this.numCtx = counts?.numCtx ?? 0;
  }
}

const tokenClasses: Record<
  Exclude<DaemonErrorToken, "context_overflow">,
  new (init: DaemonErrorInit) => DaemonError
> = {
  context_canceled: DaemonCanceledError,
  deadline_exceeded: DaemonDeadlineError,
  stale_fence: StaleFenceError,
  not_owner: NotOwnerError,
  session_closed: SessionClosedError,
  session_fatal: SessionFatalError,
  model_busy: ModelBusyError,
  model_not_active: ModelNotActiveError,
  model_switch_required: ModelSwitchRequiredError,
  device_busy: DeviceBusyError,
  model_load_failed: ModelLoadFailedError,
  insufficient_memory: InsufficientMemoryError,
  slot_generation_stale: SlotGenerationStaleError,
  backend_mismatch: BackendMismatchError,
  unsupported_feature: UnsupportedFeatureError,
  manifest_mismatch: ManifestMismatchError,
  model_not_found: ModelNotFoundError,
  digest_mismatch: DigestMismatchError,
  unsupported_model_type: UnsupportedModelTypeError,
};

/**
 * Every daemon error token, in the daemon's table order.
 *
 * @example
 * ```ts
 * import { DAEMON_ERROR_TOKENS } from "@contenox/modeldconn";
 * console.assert(DAEMON_ERROR_TOKENS.length === 20 && DAEMON_ERROR_TOKENS[2] === "stale_fence");
 * ```
 */
export const DAEMON_ERROR_TOKENS: readonly DaemonErrorToken[] = [
  "context_canceled",
  "deadline_exceeded",
  "stale_fence",
  "not_owner",
  "session_closed",
  "context_overflow",
  "session_fatal",
  "model_busy",
  "model_not_active",
  "model_switch_required",
  "device_busy",
  "model_load_failed",
  "insufficient_memory",
  "slot_generation_stale",
  "backend_mismatch",
  "unsupported_feature",
  "manifest_mismatch",
  "model_not_found",
  "digest_mismatch",
  "unsupported_model_type",
];

/**
 * Whether `token` is one of the daemon's error tokens.
 *
 * @param token A candidate token.
 * @returns True for a known token.
 *
 * @example
 * ```ts
 * import { isDaemonErrorToken } from "@contenox/modeldconn";
 * console.assert(isDaemonErrorToken("model_busy") && !isDaemonErrorToken("internal"));
 * ```
 */
export function isDaemonErrorToken(token: string): token is DaemonErrorToken {
  return (DAEMON_ERROR_TOKENS as readonly string[]).includes(token);
}

/**
 * Builds the typed error for a daemon error token.
 *
 * @param token The daemon's error token.
 * @param init Where the error came from.
 * @param overflow Overflow counts, for `context_overflow`.
 * @returns The matching {@linkcode DaemonError} subclass.
 *
 * @example
 * ```ts
 * import { daemonErrorFor, ModelBusyError } from "@contenox/modeldconn";
 * const err = daemonErrorFor("model_busy", { grpcCode: 9, detail: "slot is busy" });
 * console.assert(err instanceof ModelBusyError);
 * ```
 */
export function daemonErrorFor(
  token: DaemonErrorToken,
  init: DaemonErrorInit,
  overflow?: Partial<ContextOverflowCounts>,
): DaemonError {
  if (token === "context_overflow") return new ContextOverflowError(init, overflow);
  return new tokenClasses[token](init);
}

// ---------------------------------------------------------------------------
// Transport failures

/**
 * The daemon's endpoint did not answer (connection refused or lost).
 *
 * @example
 * ```ts
 * import { ConnectionError } from "@contenox/modeldconn";
 * console.assert(new ConnectionError("127.0.0.1:1", "refused").retryable);
 * ```
 */
export class ConnectionError extends ModeldError {
  /** The endpoint that did not answer. */
  readonly endpoint: string;
  /**
   * Creates the error.
   *
   * @param endpoint The endpoint that did not answer.
   * @param reason What the transport said.
   * @param options The cause.
   */
  constructor(endpoint: string, reason: string, options: ModeldErrorOptions = {}) {
    super("unavailable", `Cannot reach modeld at ${endpoint}: ${reason}`, {
      ...options,
      retryable: true,
    });
    this.endpoint = endpoint;
  }
}

/**
 * The call ran past its timeout or its signal's deadline.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@contenox/modeldconn";
 * console.assert(new TimeoutError("Decode").code === "timeout");
 * ```
 */
export class TimeoutError extends ModeldError {
  /**
   * Creates the error.
   *
   * @param rpc The RPC that timed out.
   * @param options The cause.
   */
  constructor(rpc: string, options: ModeldErrorOptions = {}) {
    super("timeout", `${rpc} timed out`, { ...options, retryable: true });
  }
}

/**
 * The caller aborted the call through its `AbortSignal`.
 *
 * @example
 * ```ts
 * import { AbortedError } from "@contenox/modeldconn";
 * console.assert(new AbortedError("OpenSession").code === "aborted");
 * ```
 */
export class AbortedError extends ModeldError {
  /**
   * Creates the error.
   *
   * @param rpc The RPC that was aborted.
   * @param options The cause (the signal's reason).
   */
  constructor(rpc: string, options: ModeldErrorOptions = {}) {
    super("aborted", `${rpc} was aborted by the caller`, options);
  }
}

/**
 * The first daemon version that has each RPC newer than v0.32.3.
 *
 * @example
 * ```ts
 * import { RPC_SINCE } from "@contenox/modeldconn";
 * console.assert(RPC_SINCE["PushModel"] === "v0.34.0");
 * ```
 */
export const RPC_SINCE: Readonly<Record<string, string>> = {
  Status: "v0.32.4",
  LoadModel: "v0.32.4",
  UnloadModel: "v0.32.4",
  Embed: "v0.32.4",
  Snapshot: "v0.32.4",
  Restore: "v0.32.4",
  ListModels: "v0.34.0",
  RemoveModel: "v0.34.0",
  DiskStats: "v0.34.0",
  PushModel: "v0.34.0",
};

/**
 * The connected daemon does not have this RPC: it predates the version that
 * added it.
 *
 * @example
 * ```ts
 * import { DaemonTooOldError } from "@contenox/modeldconn";
 * const err = new DaemonTooOldError("Status");
 * console.assert(err.requiredVersion === "v0.32.4");
 * ```
 */
export class DaemonTooOldError extends ModeldError {
  /** The RPC the daemon lacks. */
  readonly rpc: string;
  /** The first daemon version that has it. */
  readonly requiredVersion: string;
  /**
   * Creates the error.
   *
   * @param rpc The RPC the daemon lacks.
   * @param options The cause.
   */
  constructor(rpc: string, options: ModeldErrorOptions = {}) {
    const since = RPC_SINCE[rpc] ?? "a newer version";
    super(
      "daemon_too_old",
      `Cannot call ${rpc}: the running modeld predates it (needs contenox runtime ${since} or newer)`,
      options,
    );
    this.rpc = rpc;
    this.requiredVersion = since;
  }
}

/**
 * The caller passed something the daemon can never accept; nothing was sent.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError } from "@contenox/modeldconn";
 * console.assert(new InvalidArgumentError("Cannot push: name is empty").code === "invalid_argument");
 * ```
 */
export class InvalidArgumentError extends ModeldError {
  /**
   * Creates the error.
   *
   * @param message What is wrong and what to do.
   * @param options The cause.
   */
  constructor(message: string, options: ModeldErrorOptions = {}) {
    super("invalid_argument", message, options);
  }
}

/**
 * An endpoint (a lease's `meta.endpoint`, or an address passed to
 * `client.endpoint()`) that Go's `net.Dial` could not dial either, or a legacy
 * IPv4 form it would not read as an address; nothing was dialled. A lease
 * naming one makes the daemon unreachable ({@linkcode DaemonUnreachableError},
 * with this error as its cause), as in Go's probe.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError, InvalidEndpointError } from "@contenox/modeldconn";
 * const err = new InvalidEndpointError("[::1", "missing ']' in address");
 * console.assert(err instanceof InvalidArgumentError && err.endpoint === "[::1");
 * ```
 */
export class InvalidEndpointError extends InvalidArgumentError {
  /** The endpoint as written. */
  readonly endpoint: string;
  /** What is wrong with it. */
  readonly reason: string;

  /**
   * Creates the error.
   *
   * @param endpoint The endpoint as written.
   * @param reason What is wrong with it.
   * @param options The cause.
   */
  constructor(endpoint: string, reason: string, options: ModeldErrorOptions = {}) {
    const shown = endpoint.length > 80 ? `${endpoint.slice(0, 80)}…` : endpoint;
    super(
      `Cannot dial ${JSON.stringify(shown)}: not a modeld endpoint: ${reason} ` +
        "(expected host:port, e.g. 127.0.0.1:40517 or [::1]:40517)",
      options,
    );
    this.endpoint = endpoint;
    this.reason = reason;
  }
}

/**
 * The daemon failed without one of its tokens (`internal: …`, a codec error, a
 * size limit), or the response broke the protocol.
 *
 * @example
 * ```ts
 * import { DaemonInternalError } from "@contenox/modeldconn";
 * const err = new DaemonInternalError("OpenSession", 13, "internal: no backend");
 * console.assert(err.grpcCode === 13);
 * ```
 */
export class DaemonInternalError extends ModeldError {
  /** The gRPC status code number (0 inside a Decode stream). */
  readonly grpcCode: number;
  /** The daemon's raw message. */
  readonly detail: string;
  /** The RPC that failed, when known. */
  readonly rpc?: string;
  /**
   * Creates the error.
   *
   * @param rpc The RPC that failed ("" when unknown).
   * @param grpcCode The gRPC status code number.
   * @param detail The daemon's raw message.
   * @param options The cause.
   */
  constructor(rpc: string, grpcCode: number, detail: string, options: ModeldErrorOptions = {}) {
    super("internal", `${rpc ? `${rpc} failed: ` : ""}${detail}`, options);
    this.grpcCode = grpcCode;
    this.detail = detail;
    if (rpc) this.rpc = rpc;
  }
}

/**
 * No model was named and the daemon's store does not hold exactly one to use
 * instead (see `defaultModel`).
 *
 * @example
 * ```ts
 * import { NoDefaultModelError } from "@contenox/modeldconn";
 * const err = new NoDefaultModelError(["alpha", "beta"]);
 * console.assert(err.stored.length === 2 && err.code === "invalid_argument");
 * ```
 */
export class NoDefaultModelError extends InvalidArgumentError {
  /** The names in the store (empty when it is empty or the daemon has none). */
  readonly stored: readonly string[];

  /**
   * Creates the error.
   *
   * @param stored The names in the store.
   * @param options The cause (a {@linkcode DaemonTooOldError} when the daemon has no store).
   */
  constructor(stored: readonly string[], options: ModeldErrorOptions = {}) {
    const need = "name a model (a name in the daemon's store, or a ModelRef with a path)";
    super(
      options.cause instanceof DaemonTooOldError
        ? `Cannot choose a model: this modeld has no model store (before v0.34.0); ${need}`
        : stored.length === 0
        ? `Cannot choose a model: the daemon's store is empty; ${need}, or push one first`
        : `Cannot choose a model: the store has ${stored.length} (${stored.join(", ")}); ${need}`,
      options,
    );
    this.stored = stored;
  }
}

/**
 * `waitForDaemon` gave up: the daemon was not running and ready in time.
 *
 * @example
 * ```ts
 * import { DaemonWaitTimeoutError } from "@contenox/modeldconn";
 * const err = new DaemonWaitTimeoutError(5000, "not_running", "/tmp/root");
 * console.assert(err.code === "timeout" && err.lastState === "not_running");
 * ```
 */
export class DaemonWaitTimeoutError extends TimeoutError {
  /** The probe state seen last (`not_running`, `stale`, `unreachable`, …). */
  readonly lastState: string;

  /**
   * Creates the error.
   *
   * @param timeoutMs How long it waited.
   * @param lastState The probe state seen last.
   * @param dataRoot The data root it watched.
   * @param options The cause (the last probe's error).
   */
  constructor(
    timeoutMs: number,
    lastState: string,
    dataRoot: string,
    options: ModeldErrorOptions = {},
  ) {
    super("waitForDaemon", options);
    this.message = `modeld was not ready after ${timeoutMs} ms (last state: ${lastState}); ` +
      `start it on ${dataRoot} (\`modeld serve --data-root ${dataRoot}\`, or ` +
      `\`deno task serve --data-root ${dataRoot}\`), or pass a longer timeoutMs`;
    this.lastState = lastState;
  }
}
