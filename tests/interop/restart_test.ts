/**
 * The restart test: a client holding an idle HTTP/2 connection to the real
 * modeld v0.36.0 sees the daemon stop gracefully (SIGTERM → GOAWAY) and a new
 * one start on the same data root; its next call must succeed against the new
 * instance, and the Deno process must survive.
 *
 * Deno 2.9.4 to 2.9.6 crash with SIGSEGV here in most runs
 * (denoland/deno#36788), so the client runs in a child Deno process, granted
 * only `--allow-read=<data root> --allow-net=127.0.0.1`; the test checks that
 * it exits with code 0 and not by a signal, after 5 restarts per run (with the
 * new daemon alternately on the old port and on a new one).
 */
import assert from "node:assert/strict";
import { type GoProcess, PEER_VERSION, startModeld, tempDataRoot } from "./peers.ts";

const CHILD = new URL("./restart_child.ts", import.meta.url).pathname;
const RESTARTS = 5;
const LINE_TIMEOUT_MS = 30_000;

/** A child process speaking lines on stdin/stdout. */
class LineChild implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: string[] = [];
  readonly #drained: Promise<void>;
  #wake: (() => void) | undefined;
  #eof = false;
  stderr = "";
  #status: Deno.CommandStatus | undefined;

  constructor(command: Deno.Command) {
    const child = command.spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#drained = Promise.all([
      (async () => {
        let pending = "";
        for await (const text of child.stdout.pipeThrough(new TextDecoderStream())) {
          pending += text;
          let nl;
          while ((nl = pending.indexOf("\n")) >= 0) {
            this.#lines.push(pending.slice(0, nl));
            pending = pending.slice(nl + 1);
            this.#wake?.();
          }
        }
        this.#eof = true;
        this.#wake?.();
      })(),
      (async () => {
        for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
          this.stderr += text;
        }
      })(),
    ]).then(() => {});
  }

  async send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(`${line}\n`));
  }

  /** The next stdout line; throws on EOF or timeout. */
  async next(what: string): Promise<string> {
    const deadline = performance.now() + LINE_TIMEOUT_MS;
    while (this.#lines.length === 0) {
      if (this.#eof) {
        const { code, signal } = await this.#child.status;
        throw new Error(
          `the child exited (code ${code}, signal ${signal}) while the test waited for ${what}; ` +
            `stderr:\n${this.stderr}`,
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(`no line from the child within ${LINE_TIMEOUT_MS} ms (${what})`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.#wake = undefined;
    }
    return this.#lines.shift()!;
  }

  /** Closes stdin and waits for the exit. */
  async finish(): Promise<Deno.CommandStatus> {
    if (this.#status) return this.#status;
    await this.#writer.close().catch(() => {});
    this.#status = await this.#child.status;
    await this.#drained;
    return this.#status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#status) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // exited
      }
      await this.finish();
    }
  }
}

Deno.test(`[modeld ${PEER_VERSION}] restart: an idle client survives ${RESTARTS} graceful restarts (child Deno process)`, async () => {
  await using root = await tempDataRoot();
  let daemon: GoProcess = await startModeld({ dataRoot: root.path });
  try {
    await using child = new LineChild(
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-prompt",
          `--allow-read=${root.path}`,
          "--allow-net=127.0.0.1",
          CHILD,
          root.path,
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }),
    );
    assert.equal(await child.next("the ready line"), "ready");
    await child.send("call");
    assert.equal(await child.next("the first call"), `ok ${daemon.instanceId}`);

    for (let i = 1; i <= RESTARTS; i++) {
      const old = daemon;
      const status = await old.terminate(); // GracefulStop: GOAWAY on the idle connection
      assert.equal(status.code, 0, `modeld stop ${i}: ${old.stderr}`);
      // Odd restarts reuse the old address (the old connection's target), even ones a new port.
      daemon = await startModeld({
        dataRoot: root.path,
        listen: i % 2 === 1 ? old.endpoint : "127.0.0.1:0",
      });
      assert.notEqual(daemon.instanceId, old.instanceId);
      await old[Symbol.asyncDispose]();
      // Let the child sit idle with the closed connection before its next call.
      await new Promise((resolve) => setTimeout(resolve, 100));
      await child.send("call");
      assert.equal(
        await child.next(`the call after restart ${i}`),
        `ok ${daemon.instanceId}`,
        `restart ${i}`,
      );
    }

    await child.send("exit");
    const exit = await child.finish();
    assert.equal(exit.signal, null, `the child died by ${exit.signal}; stderr:\n${child.stderr}`);
    assert.equal(exit.code, 0, `child stderr:\n${child.stderr}`);
  } finally {
    await daemon[Symbol.asyncDispose]();
  }
});
