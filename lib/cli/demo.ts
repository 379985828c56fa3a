/**
 * The README's demo (`deno task demo`): starts the package's test daemon with
 * a scripted model in a temporary data root, then runs the CLI in a child Deno
 * process granted only `--allow-read=<data root> --allow-net=127.0.0.1`:
 * `status`, a streamed `generate`, and a two-turn `chat --stats` whose second
 * turn reuses the resident system prompt. Everything goes through the real
 * lease discovery and gRPC path; the daemon is stopped and its data root
 * removed at the end.
 *
 * Permissions: `--allow-read` and `--allow-write` on the temporary directory,
 * `--allow-net=127.0.0.1`, and `--allow-run` for the Deno executable:
 *
 * ```sh
 * mkdir -p .cache/tmp && TMPDIR=$PWD/.cache/tmp deno run --allow-read=.cache/tmp \
 *   --allow-write=.cache/tmp --allow-net=127.0.0.1 --allow-run=.tools/node_modules/deno/deno \
 *   lib/cli/demo.ts
 * ```
 *
 * @example
 * ```ts ignore
 * import { runDemo } from "./demo.ts";
 * Deno.exit(await runDemo());
 * ```
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { startTestDaemon, type TestDaemon } from "../testing/daemon.ts";
import type { ReplyRequest } from "../testing/memory_service.ts";

const SCRIPTED_MODEL = "demo-model";
const SYSTEM = "You are a concise assistant. Answer in one sentence.";
const GENERATE_PROMPT = "Why is the sky blue?";
const CHAT_TURNS = ["Name the three primary colours of light.", "Which of them is the warmest?"];

/** The scripted model: answers keyed by the last question in the conversation. */
const ANSWERS: [string, string][] = [
  [
    GENERATE_PROMPT,
    "Sunlight scatters off the molecules of the air, and blue light, with its short " +
    "wavelength, scatters the most, so blue reaches your eyes from every direction of the sky.",
  ],
  [CHAT_TURNS[0], "Red, green and blue."],
  [CHAT_TURNS[1], "Red: it sits at the long-wavelength, warm end of the spectrum."],
];

function reply({ prompt }: ReplyRequest): string {
  // The suffix is the conversation after the system prompt: the last turn ends it.
  for (const [question, answer] of ANSWERS) {
    if (prompt.suffix.trimEnd().endsWith(question)) return answer;
  }
  return "I only know the demo's questions.";
}

/**
 * Runs the demo and returns the exit code (0 when every step succeeded).
 *
 * @param options The Deno executable and `cli.ts` location (defaults: this
 *   process's Deno, the package's `cli.ts`), and a delay between streamed
 *   chunks so the streaming is visible.
 * @returns 0 on success, else the first failing step's exit code.
 *
 * @example
 * ```ts ignore
 * import { runDemo } from "./demo.ts";
 * const code = await runDemo({ chunkDelayMs: 0 });
 * ```
 */
export async function runDemo(
  options: { deno?: string; cli?: string; chunkDelayMs?: number; model?: string } = {},
): Promise<number> {
  const deno = options.deno ?? Deno.execPath();
  const cliUrl = new URL("../../cli.ts", import.meta.url);
  const cli = options.cli ?? (cliUrl.protocol === "file:" ? fileURLToPath(cliUrl) : cliUrl.href);
  const bold = Deno.stdout.isTerminal() && !Deno.noColor;
  const say = (text: string) => console.log(bold ? `\x1b[1m${text}\x1b[22m` : text);
  if (options.model) return await realDemo(options.model, deno, cli, say);

  await using daemon = await startTestDaemon({
    reply,
    chunkDelayMs: options.chunkDelayMs ?? 40,
    models: { [SCRIPTED_MODEL]: "GGUF (a stand-in for real weights)" },
  });
  // Ctrl-C: the children stop on their own; stop the daemon and remove its data root too.
  const onInterrupt = () => void daemon.stop().finally(() => Deno.exit(130));
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    return await steps(daemon, deno, cli, say);
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}

/** The real thing: the llama.cpp daemon on a temporary data root, a real model. */
async function realDemo(
  model: string,
  deno: string,
  cli: string,
  say: (text: string) => void,
): Promise<number> {
  // Loaded only here: the scripted demo never loads the engine.
  const { serve } = await import("../daemon/serve.ts");
  const root = await Deno.makeTempDir({ prefix: "modeld-demo-" });
  try {
    const started = performance.now();
    await using daemon = await serve({ dataRoot: root, idleTtlMs: 0 });
    say(
      `# The llama.cpp daemon (modeld v0.36.0 wire) started in ${
        Math.round(performance.now() - started)
      } ms; the model is ${model}`,
    );
    const { onStopSignal } = await import("../daemon/signals.ts");
    const unlisten = onStopSignal(() => void daemon.close().finally(() => Deno.exit(130)));
    try {
      return await steps(daemon, deno, cli, say, {
        name: "smollm2",
        flags: ["--path", model, "--temperature", "0", "--max-tokens", "48"],
        what: "the llama.cpp daemon (real inference)",
      });
    } finally {
      unlisten();
    }
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

async function steps(
  daemon: TestDaemon,
  deno: string,
  cli: string,
  say: (text: string) => void,
  real?: { name: string; flags: string[]; what: string },
): Promise<number> {
  const root = daemon.dataRoot;
  const MODEL = real?.name ?? SCRIPTED_MODEL;
  const modelFlags = real ? ["--model", MODEL, ...real.flags] : ["--model", MODEL];
  const shownFlags = real
    ? `--model ${MODEL} --path MODEL.gguf --temperature 0`
    : `--model ${MODEL}`;
  say(
    `# ${
      real?.what ?? `A test daemon (modeld v0.36.0 wire format, scripted model "${MODEL}")`
    } serves at`,
  );
  say(`# ${daemon.endpoint}; its lease is in ROOT=${root}`);
  say(
    "# The CLI runs in a child Deno process granted only --allow-read=$ROOT --allow-net=127.0.0.1.",
  );
  const grants = [`--allow-read=${root}`, "--allow-net=127.0.0.1"];
  const shown = "deno run --allow-read=$ROOT --allow-net=127.0.0.1 cli.ts --data-root $ROOT";
  const spawn = (args: string[], piped: boolean) =>
    new Deno.Command(deno, {
      args: ["run", "--no-prompt", ...grants, cli, "--data-root", root, ...args],
      stdin: piped ? "piped" : "null",
      stdout: piped ? "piped" : "inherit",
      stderr: piped ? "piped" : "inherit",
    }).spawn();
  const check = (code: number) => {
    console.log();
    if (code !== 0) console.error(`demo: the step above exited ${code}`);
    return code;
  };

  say(`\n$ ${shown} status`);
  let code = check((await spawn(["status"], false).status).code);
  if (code !== 0) return code;

  say(`$ ${shown} generate ${shownFlags} "${GENERATE_PROMPT}"`);
  code = check((await spawn(["generate", ...modelFlags, GENERATE_PROMPT], false).status).code);
  if (code !== 0) return code;

  say(`$ ${shown} chat ${shownFlags} --stats \\\n    --system "${SYSTEM}"`);
  code = check(
    await chatTurns(spawn(["chat", ...modelFlags, "--system", SYSTEM, "--stats"], true), say),
  );
  if (code !== 0) return code;

  say("# Turn 2 reused the system prompt's tokens: the daemon kept them resident.");
  // The test daemon records its calls; the real one keeps no request log (it would grow forever).
  const methods = [...new Set(daemon.requests.map((r) => r.method))];
  const served = daemon.requests.length > 0
    ? `served ${daemon.requests.length} calls (${methods.join(", ")}); `
    : "";
  say(`# The daemon ${served}has ${daemon.openSessions} open sessions.`);
  await daemon.stop();
  if (real) {
    const leaseGone = await Deno.stat(daemon.leasePath).then(() => false, () => true);
    say(`# Daemon stopped; lease ${leaseGone ? "removed" : "NOT removed"}.`);
    return leaseGone && daemon.openSessions === 0 ? 0 : 1;
  }
  const gone = await Deno.stat(root).then(() => false, () => true);
  say(`# Daemon stopped; ROOT ${gone ? "removed" : "NOT removed"}.`);
  return gone && daemon.openSessions === 0 ? 0 : 1;
}

/**
 * Types the chat turns into the child one at a time, echoing each as `> turn`
 * and waiting for its `--stats` line (the end of the turn) before the next.
 */
async function chatTurns(child: Deno.ChildProcess, say: (text: string) => void): Promise<number> {
  const writer = child.stdin.getWriter();
  const enc = new TextEncoder();
  let stderrText = "";
  let turnSeen: (() => void) | undefined;
  const pump = async (stream: ReadableStream<Uint8Array>, to: typeof Deno.stdout, err: boolean) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      to.writeSync(enc.encode(text));
      if (err) {
        stderrText += text;
        if (/\[turn \d+:[^\n]*\n/.test(stderrText)) {
          stderrText = "";
          turnSeen?.();
        }
      }
    }
    turnSeen?.(); // the child ended: stop waiting
  };
  const pumps = Promise.all([
    pump(child.stdout, Deno.stdout, false),
    pump(child.stderr, Deno.stderr, true),
  ]);
  for (const turn of CHAT_TURNS) {
    say(`> ${turn}`);
    const done = new Promise<void>((resolve) => (turnSeen = resolve));
    await writer.write(enc.encode(`${turn}\n`));
    await done;
  }
  await writer.close();
  await pumps;
  return (await child.status).code;
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--model");
  Deno.exit(await runDemo(at >= 0 ? { model: Deno.args[at + 1] } : {}));
}
