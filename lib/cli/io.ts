/**
 * The CLI's view of the process: ordered text writers for stdout and stderr,
 * stdin as lines, terminal detection, and Ctrl-C. {@linkcode denoIo} is the
 * real process; tests can pass their own {@linkcode CliIo} to `main`.
 *
 * @example
 * ```ts ignore
 * import { denoIo, readLines } from "./io.ts";
 *
 * const io = denoIo();
 * for await (const line of readLines(io.stdin.readable)) io.stdout.write(`> ${line}\n`);
 * await io.stdout.flush();
 * ```
 *
 * @module
 */

/**
 * A text destination. Writes never throw; `flush` waits for any pending
 * write and reports the first write error (e.g. a closed pipe).
 *
 * @example
 * ```ts
 * import { BufferSink } from "./io.ts";
 * const sink = new BufferSink();
 * sink.write("hello");
 * await sink.flush();
 * console.assert(sink.text === "hello");
 * ```
 */
export interface TextSink {
  /** Whether the destination is a terminal (progress bars, colours, prompts). */
  readonly isTerminal: boolean;
  /**
   * Writes `text`.
   *
   * @param text The text.
   */
  write(text: string): void;
  /** Waits for pending writes; rejects with the first write error. */
  flush(): Promise<void>;
}

/**
 * Standard input.
 *
 * @example
 * ```ts
 * import type { TextSource } from "./io.ts";
 * const stdin: TextSource = {
 *   isTerminal: false,
 *   readable: ReadableStream.from([new TextEncoder().encode("hello\n")]),
 * };
 * ```
 */
export interface TextSource {
  /** Whether stdin is a terminal (then `generate` does not read a prompt from it). */
  readonly isTerminal: boolean;
  /** The bytes. */
  readonly readable: ReadableStream<Uint8Array>;
}

/**
 * Everything the CLI touches outside itself.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * import { BufferSink, type CliIo } from "./io.ts";
 * const io: CliIo = {
 *   stdout: new BufferSink(), stderr: new BufferSink(),
 *   stdin: { isTerminal: false, readable: ReadableStream.from([]) },
 *   color: false, onInterrupt: () => () => {},
 * };
 * console.log(await main(["--help"], io));
 * ```
 */
export interface CliIo {
  /** Results. */
  stdout: TextSink;
  /** Errors, progress notes, reasoning and stats. */
  stderr: TextSink;
  /** Prompts and chat turns. */
  stdin: TextSource;
  /** Whether colours are allowed (`NO_COLOR` is unset); used only on terminals. */
  color: boolean;
  /**
   * Subscribes to Ctrl-C (SIGINT). While a listener is registered the process
   * does not die on Ctrl-C; the CLI decides what to do.
   *
   * @param listener Called on each SIGINT.
   * @returns Unsubscribes.
   */
  onInterrupt(listener: () => void): () => void;
}

/**
 * A {@linkcode TextSink} writing synchronously to a Deno writer (stdout or
 * stderr), so text on the two streams keeps its order on a terminal. A write
 * error (a closed pipe) is kept for {@linkcode WriterSink.flush} and later
 * writes are dropped.
 *
 * @example
 * ```ts ignore
 * import { WriterSink } from "./io.ts";
 * const out = new WriterSink(Deno.stdout);
 * out.write("hi\n");
 * await out.flush();
 * ```
 */
export class WriterSink implements TextSink {
  readonly isTerminal: boolean;
  readonly #writer: { writeSync(p: Uint8Array): number };
  readonly #encoder = new TextEncoder();
  #error: unknown;

  /** @param writer `Deno.stdout` or `Deno.stderr`. */
  constructor(writer: { writeSync(p: Uint8Array): number; isTerminal(): boolean }) {
    this.#writer = writer;
    this.isTerminal = writer.isTerminal();
  }

  /** @param text The text to write. */
  write(text: string): void {
    if (text === "" || this.#error !== undefined) return;
    const bytes = this.#encoder.encode(text);
    try {
      let offset = 0;
      while (offset < bytes.length) offset += this.#writer.writeSync(bytes.subarray(offset));
    } catch (err) {
      this.#error = err;
    }
  }

  /** @returns Rejects with the first write error, if any. */
  flush(): Promise<void> {
    if (this.#error === undefined) return Promise.resolve();
    const err = this.#error;
    this.#error = undefined;
    return Promise.reject(err);
  }
}

/**
 * A {@linkcode TextSink} that keeps what was written, for tests.
 *
 * @example
 * ```ts
 * import { BufferSink } from "./io.ts";
 * const sink = new BufferSink(true);
 * sink.write("a");
 * sink.write("b");
 * console.assert(sink.text === "ab" && sink.isTerminal);
 * ```
 */
export class BufferSink implements TextSink {
  readonly isTerminal: boolean;
  /** Everything written so far. */
  text = "";

  /** @param isTerminal Whether to pretend to be a terminal. */
  constructor(isTerminal = false) {
    this.isTerminal = isTerminal;
  }

  /** @param text The text. */
  write(text: string): void {
    this.text += text;
  }

  /** @returns At once. */
  flush(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The real process: `Deno.stdout`, `Deno.stderr`, `Deno.stdin`, `Deno.noColor`
 * and `Deno.addSignalListener("SIGINT", …)`. Needs no permission.
 *
 * @returns The process's I/O.
 *
 * @example
 * ```ts ignore
 * import { denoIo } from "./io.ts";
 * const io = denoIo();
 * if (io.stdout.isTerminal) io.stdout.write("on a terminal\n");
 * ```
 */
export function denoIo(): CliIo {
  return {
    stdout: new WriterSink(Deno.stdout),
    stderr: new WriterSink(Deno.stderr),
    stdin: {
      isTerminal: Deno.stdin.isTerminal(),
      get readable() {
        return Deno.stdin.readable;
      },
    },
    color: !Deno.noColor,
    onInterrupt(listener) {
      Deno.addSignalListener("SIGINT", listener);
      return () => Deno.removeSignalListener("SIGINT", listener);
    },
  };
}

/**
 * Reads all of a byte stream as text.
 *
 * @param readable The bytes (stdin).
 * @param signal Stops reading; what was read so far is returned.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { readAll } from "./io.ts";
 * const text = await readAll(ReadableStream.from([new TextEncoder().encode("hi")]));
 * console.assert(text === "hi");
 * ```
 */
export async function readAll(
  readable: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): Promise<string> {
  let text = "";
  for await (const chunk of readChunks(readable, signal)) text += chunk;
  return text;
}

/**
 * Splits a byte stream into lines (without their `\n` or `\r\n`); a last line
 * without a newline counts.
 *
 * @param readable The bytes (stdin).
 * @param signal Stops reading: the iteration ends.
 * @returns The lines.
 *
 * @example
 * ```ts
 * import { readLines } from "./io.ts";
 * const lines = [];
 * for await (const l of readLines(ReadableStream.from([new TextEncoder().encode("a\r\nb")]))) lines.push(l);
 * console.assert(lines.join() === "a,b");
 * ```
 */
export async function* readLines(
  readable: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of readChunks(readable, signal)) {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
    }
  }
  if (buffer !== "" && !signal?.aborted) yield buffer.replace(/\r$/, "");
}

/** Decoded text chunks of a byte stream; a pending read is abandoned when `signal` aborts. */
async function* readChunks(
  readable: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  const reader = readable.getReader();
  const decoder = new TextDecoder();
  const aborted = new Promise<"aborted">((resolve) => {
    if (signal?.aborted) resolve("aborted");
    signal?.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
  try {
    while (true) {
      const next = await Promise.race([reader.read(), aborted]);
      if (next === "aborted" || next.done) break;
      yield decoder.decode(next.value, { stream: true });
    }
    const tail = decoder.decode();
    if (tail !== "" && !signal?.aborted) yield tail;
  } finally {
    // A read may still be pending (stdin after Ctrl-C): cancel instead of waiting for it.
    reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/**
 * A {@linkcode CliIo} that keeps stdout and stderr in memory, with an empty
 * terminal stdin and no colour, for running the CLI in-process in tests.
 *
 * @returns The I/O, its sinks typed as {@linkcode BufferSink} for reading back.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * import { bufferIo } from "./io.ts";
 * const io = bufferIo();
 * console.log(await main(["--help"], io), io.stdout.text);
 * ```
 */
export function bufferIo(): CliIo & { stdout: BufferSink; stderr: BufferSink } {
  return {
    stdout: new BufferSink(),
    stderr: new BufferSink(),
    stdin: { isTerminal: true, readable: ReadableStream.from<Uint8Array>([]) },
    color: false,
    onInterrupt: () => () => {},
  };
}
