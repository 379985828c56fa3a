/**
 * Command-line parsing for the CLI: global flags (`--data-root`, `--json`, `--help`, `--timeout`)
 * may appear anywhere; each command adds its own flags; anything after `--` is
 * a positional argument. Every parse failure is a {@linkcode UsageError}
 * (exit code 2) whose message says how to fix it.
 *
 * @example
 * ```ts
 * import { parseCli } from "./args.ts";
 *
 * const cli = parseCli(["generate", "--model", "qwen", "--json", "hi", "there"]);
 * console.assert(cli.command === "generate" && cli.global.json);
 * console.assert(cli.flags.string("model") === "qwen");
 * console.assert(cli.positionals.join(" ") === "hi there");
 * ```
 *
 * @module
 */

/**
 * The command line is wrong: an unknown flag, a missing or malformed value, a
 * missing argument. The message says what to pass instead.
 *
 * @example
 * ```ts
 * import { UsageError } from "./args.ts";
 * const err = new UsageError("Cannot generate: no prompt (pass PROMPT or pipe it on stdin)");
 * console.assert(err.name === "UsageError");
 * ```
 */
export class UsageError extends Error {
  /**
   * @param message What is wrong and what to pass instead.
   * @param options The cause.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UsageError";
  }
}

/**
 * A flag's declaration.
 *
 * @example
 * ```ts
 * import type { FlagSpec } from "./args.ts";
 * const model: FlagSpec = { type: "string", short: "m" };
 * ```
 */
export interface FlagSpec {
  /** `"string"` flags take a value, `"boolean"` flags do not. */
  type: "string" | "boolean";
  /** A one-letter alias. */
  short?: string;
}

/**
 * The flags every command accepts.
 *
 * @example
 * ```ts
 * import { GLOBAL_FLAGS } from "./args.ts";
 * console.assert(GLOBAL_FLAGS["data-root"].type === "string");
 * ```
 */
export const GLOBAL_FLAGS: Readonly<Record<string, FlagSpec>> = {
  "data-root": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  timeout: { type: "string" },
};

const MODEL_FLAGS: Record<string, FlagSpec> = {
  model: { type: "string", short: "m" },
  path: { type: "string" },
  type: { type: "string" },
  ctx: { type: "string" },
};

const DECODE_FLAGS: Record<string, FlagSpec> = {
  system: { type: "string", short: "s" },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-p": { type: "string" },
  "top-k": { type: "string" },
  seed: { type: "string" },
  thinking: { type: "boolean" },
};

/**
 * The flags of each command (besides {@linkcode GLOBAL_FLAGS}).
 *
 * @example
 * ```ts
 * import { COMMAND_FLAGS } from "./args.ts";
 * console.assert("stats" in COMMAND_FLAGS.chat && !("stats" in COMMAND_FLAGS.generate));
 * ```
 */
export const COMMAND_FLAGS: Readonly<Record<string, Readonly<Record<string, FlagSpec>>>> = {
  status: {},
  describe: MODEL_FLAGS,
  generate: { ...MODEL_FLAGS, ...DECODE_FLAGS },
  chat: { ...MODEL_FLAGS, ...DECODE_FLAGS, stats: { type: "boolean" } },
  embed: MODEL_FLAGS,
  load: MODEL_FLAGS,
  unload: { generation: { type: "string" } },
  models: { name: { type: "string" }, type: { type: "string" }, format: { type: "string" } },
  serve: { threads: { type: "string" }, "idle-ttl": { type: "string" }, ttl: { type: "string" } },
  help: {},
};

/**
 * The commands, in the order `--help` lists them.
 *
 * @example
 * ```ts
 * import { COMMANDS } from "./args.ts";
 * console.assert(COMMANDS.includes("generate"));
 * ```
 */
export const COMMANDS: readonly string[] = Object.keys(COMMAND_FLAGS);

/**
 * The global flags, parsed.
 *
 * @example
 * ```ts
 * import type { GlobalOptions } from "./args.ts";
 * const global: GlobalOptions = { json: true, help: false, timeoutMs: 5000 };
 * ```
 */
export interface GlobalOptions {
  /** `--data-root DIR`: the data root whose lease names the daemon (default: the library's resolution). */
  dataRoot?: string;
  /** `--json`: machine-readable output. */
  json: boolean;
  /** `--help` / `-h`. */
  help: boolean;
  /** `--timeout MS`: a deadline for each call to the daemon. */
  timeoutMs?: number;
}

/**
 * A command's parsed flag values with typed, validated accessors. Every
 * accessor throws a {@linkcode UsageError} naming the flag on a bad value.
 *
 * @example
 * ```ts
 * import { Flags } from "./args.ts";
 * const flags = new Flags({ ctx: "4096", thinking: true });
 * console.assert(flags.int("ctx", { min: 1 }) === 4096 && flags.bool("thinking"));
 * ```
 */
export class Flags {
  readonly #values: Record<string, string | boolean | undefined>;

  /** @param values The parsed flag values. */
  constructor(values: Record<string, string | boolean | undefined>) {
    this.#values = values;
  }

  /**
   * A string flag.
   *
   * @param name The flag name, without `--`.
   * @returns Its value, or `undefined` when not given.
   *
   * @example
   * ```ts
   * import { Flags } from "./args.ts";
   * console.assert(new Flags({ model: "qwen" }).string("model") === "qwen");
   * ```
   */
  string(name: string): string | undefined {
    const v = this.#values[name];
    return typeof v === "string" ? v : undefined;
  }

  /**
   * A boolean flag.
   *
   * @param name The flag name, without `--`.
   * @returns Whether it was given.
   *
   * @example
   * ```ts
   * import { Flags } from "./args.ts";
   * console.assert(!new Flags({}).bool("stats"));
   * ```
   */
  bool(name: string): boolean {
    return this.#values[name] === true;
  }

  /**
   * An integer flag.
   *
   * @param name The flag name, without `--`.
   * @param range Inclusive bounds.
   * @returns The integer, or `undefined` when not given.
   * @throws {UsageError} When the value is not an integer in range.
   *
   * @example
   * ```ts
   * import { Flags } from "./args.ts";
   * console.assert(new Flags({ "top-k": "40" }).int("top-k", { min: 0 }) === 40);
   * ```
   */
  int(name: string, range: { min?: number; max?: number } = {}): number | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    const n = /^-?\d+$/.test(text.trim()) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < (range.min ?? -Infinity) || n > (range.max ?? Infinity)) {
      throw new UsageError(
        `Invalid --${name} ${JSON.stringify(text)}: ${describeRange("an integer", range)}`,
      );
    }
    return n;
  }

  /**
   * A 64-bit integer flag (for `--seed`).
   *
   * @param name The flag name, without `--`.
   * @returns The value, or `undefined` when not given.
   * @throws {UsageError} When the value is not an integer.
   *
   * @example
   * ```ts
   * import { Flags } from "./args.ts";
   * console.assert(new Flags({ seed: "42" }).bigint("seed") === 42n);
   * ```
   */
  bigint(name: string): bigint | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    if (!/^-?\d+$/.test(text.trim())) {
      throw new UsageError(`Invalid --${name} ${JSON.stringify(text)}: pass an integer`);
    }
    const n = BigInt(text.trim());
    if (n < -(2n ** 63n) || n >= 2n ** 63n) {
      throw new UsageError(`Invalid --${name} ${text}: pass a 64-bit signed integer`);
    }
    return n;
  }

  /**
   * A number flag.
   *
   * @param name The flag name, without `--`.
   * @param range Inclusive bounds.
   * @returns The number, or `undefined` when not given.
   * @throws {UsageError} When the value is not a finite number in range.
   *
   * @example
   * ```ts
   * import { Flags } from "./args.ts";
   * console.assert(new Flags({ temperature: "0.7" }).float("temperature", { min: 0 }) === 0.7);
   * ```
   */
  float(name: string, range: { min?: number; max?: number } = {}): number | undefined {
    const text = this.string(name);
    if (text === undefined) return undefined;
    const n = text.trim() === "" ? NaN : Number(text);
    if (!Number.isFinite(n) || n < (range.min ?? -Infinity) || n > (range.max ?? Infinity)) {
      throw new UsageError(
        `Invalid --${name} ${JSON.stringify(text)}: ${describeRange("a number", range)}`,
      );
    }
    return n;
  }
}

function describeRange(what: string, range: { min?: number; max?: number }): string {
  if (range.min !== undefined && range.max !== undefined) {
    return `pass ${what} from ${range.min} to ${range.max}`;
  }
  if (range.min !== undefined) return `pass ${what} of at least ${range.min}`;
  if (range.max !== undefined) return `pass ${what} of at most ${range.max}`;
  return `pass ${what}`;
}

/**
 * A parsed command line.
 *
 * @example
 * ```ts
 * import { type ParsedCli, parseCli } from "./args.ts";
 * const cli: ParsedCli = parseCli(["models", "ls"]);
 * console.assert(cli.positionals[0] === "ls");
 * ```
 */
export interface ParsedCli {
  /** The command (`undefined` when none was given). */
  command: string | undefined;
  /** The global flags. */
  global: GlobalOptions;
  /** The command's flags. */
  flags: Flags;
  /** The positional arguments after the command. */
  positionals: string[];
}

/**
 * Parses a command line: finds the command (the first positional), then parses
 * strictly with the global flags and that command's flags.
 *
 * @param args The arguments, without the program name (`Deno.args`).
 * @returns The command, global options, flags and positionals.
 * @throws {UsageError} On an unknown command or flag, or a flag without its value.
 *
 * @example
 * ```ts
 * import { parseCli } from "./args.ts";
 * const cli = parseCli(["--data-root", "/tmp/x", "status"]);
 * console.assert(cli.command === "status" && cli.global.dataRoot === "/tmp/x");
 * ```
 */
export function parseCli(args: string[]): ParsedCli {
  // Pass 1, lenient with every known flag: find the command token, so that
  // string flags before it consume their values.
  const everyFlag: Record<string, FlagSpec> = { ...GLOBAL_FLAGS };
  for (const flags of Object.values(COMMAND_FLAGS)) Object.assign(everyFlag, flags);
  const { firstPositional } = scanArgs(args, everyFlag, false);
  const command = firstPositional === undefined ? undefined : args[firstPositional];
  if (command !== undefined && !(command in COMMAND_FLAGS)) {
    throw new UsageError(
      `Unknown command ${JSON.stringify(command)} (commands: ${COMMANDS.join(", ")}; see --help)`,
    );
  }
  const rest = firstPositional === undefined
    ? args
    : [...args.slice(0, firstPositional), ...args.slice(firstPositional + 1)];
  // Pass 2, strict: the global flags and the command's.
  const options = { ...GLOBAL_FLAGS, ...(command ? COMMAND_FLAGS[command] : {}) };
  let parsed;
  try {
    parsed = scanArgs(rest, options, true);
  } catch (err) {
    throw new UsageError(
      `${(err as Error).message} (see \`modeldconn ${command ?? ""}${command ? " " : ""}--help\`)`,
      { cause: err },
    );
  }
  const flags = new Flags(parsed.values);
  const global: GlobalOptions = {
    json: parsed.values.json === true,
    help: parsed.values.help === true,
  };
  const root = flags.string("data-root");
  if (root !== undefined) {
    if (root === "") throw new UsageError("Invalid --data-root: pass a directory");
    global.dataRoot = root;
  }
  const timeout = flags.int("timeout", { min: 1 });
  if (timeout !== undefined) global.timeoutMs = timeout;
  return { command, global, flags, positionals: parsed.positionals };
}

/** What {@linkcode scanArgs} found. */
interface Scanned {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  /** The index in `args` of the first positional, if any. */
  firstPositional?: number;
}

/**
 * Splits arguments into flag values and positionals: `--name value`,
 * `--name=value`, `-n value`, `-nvalue`, boolean `--name` and `-n`, `--`
 * ending the flags, `-` a positional. (Our own, not `node:util`'s
 * `parseArgs`: loading `node:util` cost every CLI run about 11 ms of CPU.)
 *
 * @param args The arguments.
 * @param options The flags in force.
 * @param strict Whether an unknown flag or a misused one is an error (else skipped).
 * @returns The values, the positionals and where the first one was.
 * @throws {Error} In strict mode, with the problem as its message.
 */
function scanArgs(args: string[], options: Record<string, FlagSpec>, strict: boolean): Scanned {
  const values: Record<string, string | boolean | undefined> = {};
  const positionals: string[] = [];
  let firstPositional: number | undefined;
  const shorts = new Map<string, string>();
  for (const [name, spec] of Object.entries(options)) if (spec.short) shorts.set(spec.short, name);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      firstPositional ??= i + 1 < args.length ? i + 1 : undefined;
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      firstPositional ??= i;
      positionals.push(arg);
      continue;
    }
    const long = arg.startsWith("--");
    const eq = long ? arg.indexOf("=") : -1;
    const key = long ? arg.slice(2, eq < 0 ? undefined : eq) : arg.slice(1, 2);
    const name = long ? key : shorts.get(key);
    const spec = name === undefined ? undefined : options[name];
    const shown = long ? `--${key}` : `-${key}`;
    if (!spec || name === undefined) {
      if (strict) {
        throw new Error(
          `Unknown option '${shown}'; to pass text starting with "-", put it after \`--\``,
        );
      }
      continue;
    }
    const inline = long
      ? (eq < 0 ? undefined : arg.slice(eq + 1))
      : (arg.length > 2 ? arg.slice(2) : undefined);
    if (spec.type === "boolean") {
      if (inline !== undefined && strict) {
        throw new Error(`Option '${shown}' does not take a value`);
      }
      values[name] = true;
      continue;
    }
    if (inline !== undefined) {
      values[name] = inline;
      continue;
    }
    // A value may not start with "-" (that is the next option), but a negative
    // number may follow a long flag, so the range check can say what is wrong with it.
    const next = args[i + 1];
    const negative = long && next !== undefined && /^-(\d|\.\d)/.test(next);
    if (next === undefined || (next.startsWith("-") && next !== "-" && !negative)) {
      if (strict) {
        throw new Error(
          `Option '${shown}' needs a value (for one starting with "-", write ${shown}=VALUE)`,
        );
      }
      continue;
    }
    values[name] = next;
    i++;
  }
  return { values, positionals, firstPositional };
}
