/**
 * The CLI's `--help` texts: the overview (commands, global flags, exit codes,
 * permissions) and one text per command.
 *
 * @example
 * ```ts
 * import { helpText } from "./help.ts";
 * console.assert(helpText().includes("Exit codes:"));
 * console.assert(helpText("generate").includes("--max-tokens"));
 * ```
 *
 * @module
 */

import { EXIT_CODES_HELP } from "./exit_codes.ts";

const RUN =
  "deno run --allow-read=$HOME/.contenox --allow-net=127.0.0.1 --allow-env=CONTENOX_DATA_ROOT,HOME \\\n" +
  "    jsr:@contenox/modeldconn/cli";

const GLOBAL = `Global options:
  --data-root DIR   The data root whose modeld.lease names the daemon. Default:
                    $CONTENOX_DATA_ROOT, else $HOME/.contenox (reading those needs
                    --allow-env=CONTENOX_DATA_ROOT,HOME; or pass --data-root)
  --json            Machine-readable output on stdout (NDJSON for streams);
                    errors as {"error":{...}} on stderr
  --timeout MS      Deadline for each call to the daemon (generate, chat: for the
                    whole generation or turn; default: none)
  -h, --help        Show help`;

const MODEL = `Model options:
  -m, --model NAME  The model's name in the daemon's store
  --path FILE       The model file on the daemon's host (needed before v0.34.0)
  --type TYPE       llama or openvino (default: the daemon's backend)
  --ctx N           Context window (NumCtx) to load the model with`;

const DECODE = `Generation options:
  -s, --system TEXT   System prompt
  --max-tokens N      Stop after N tokens
  --temperature T     Sampling temperature (0 = greedy)
  --top-p P           Nucleus sampling (0..1)
  --top-k K           Top-k sampling
  --seed N            Sampling seed
  --thinking          Show the model's reasoning (on stderr), when the daemon parses it out`;

const OVERVIEW = `modeldconn: talk to modeld, the local LLM daemon of the contenox runtime

Usage:
  ${RUN} <command> [options]

Commands:
  status                 Is modeld running? Endpoint, backend, instance, lease, model slot
  describe --model NAME  Context sizes, memory plan and chat template of a model
  generate [PROMPT...]   One completion, streamed (prompt from stdin when none is given)
  chat                   Multi-turn chat on one warm session (one line of stdin per turn)
  embed --model NAME TEXT
                         Print the text's embedding vector as JSON
  load [--model NAME]    Load a model into the daemon's slot explicitly (until unload)
  unload                 Free the daemon's model slot
  models ls | push FILE | rm NAME | df
                         The daemon's model store (v0.34.0+)
  serve                  Run the llama.cpp daemon on the data root (foreground)
  help [COMMAND]         Show help for a command

${GLOBAL}

Permissions: --allow-read on the data root and --allow-net=127.0.0.1; --allow-read on
a file you push. Without --allow-env the CLI reads no environment variable (pass
--data-root instead). A missing permission exits 7 and names the flag to add.

${EXIT_CODES_HELP}

Run \`modeldconn <command> --help\` for a command's options.`;

const COMMANDS: Record<string, string> = {
  status: `Usage: modeldconn status [--data-root DIR] [--json]

Probes the daemon: reads the lease in the data root and calls Health. Prints the
state (running, not_running, not_installed, stale, unreachable), the endpoint,
backend, instance id and lease expiry, and, on v0.32.4+ daemons, the model slot's
state and active model (older daemons: the slot is reported as unknown).

Exits 0 when running, 3 when not installed / not running / stale, 4 when the
lease holder does not answer.

${GLOBAL}`,

  load: `Usage: modeldconn load [--model NAME] [--path FILE] [--type TYPE] [--ctx N]

Loads a model into the daemon's single slot explicitly (v0.32.4+). It stays
loaded until \`modeldconn unload\`: sessions of the same model reuse it, while
embed and models rm of it answer model_busy. Without --model and --path the
only model in the daemon's store is loaded. Prints the slot's new generation.

${MODEL}

${GLOBAL}`,

  unload: `Usage: modeldconn unload [--generation N]

Frees the daemon's model slot (v0.32.4+); an empty slot is fine. With
--generation, only if the slot is still at that generation (\`modeldconn status\`
shows it); otherwise the daemon answers slot_generation_stale. A session still
open on the model makes it answer model_busy.

  --generation N      Unload only at this slot generation

${GLOBAL}`,

  describe: `Usage: modeldconn describe --model NAME [--path FILE] [--type TYPE] [--ctx N]

Describes a model without opening a session: its maximum and effective context
and, on v0.32.4+ daemons, the memory plan, device and chat template.

${MODEL}

${GLOBAL}`,

  generate: `Usage: modeldconn generate [options] [PROMPT...]

Generates one completion and streams the text to stdout as it arrives. The prompt
is the arguments joined with spaces, or stdin when there are none and stdin is
not a terminal. Ctrl-C cancels the generation on the daemon, closes the session
and exits 130.

Without --model and --path the only model in the daemon's store is used (an
error lists the models when there are several).

${MODEL}

${DECODE}

With --json, stdout has one JSON object per chunk ({"text","thinking","toolCalls"})
and a last one {"done":true,"interrupted","chunks","stopReason","reusedTokens",
"prefilledTokens","residentTokens"}. stopReason is "end", "max_tokens" (at least
--max-tokens chunks came) or "cancelled".

${GLOBAL}`,

  chat: `Usage: modeldconn chat [options]

A multi-turn chat on one warm session: every line of stdin is a user turn (piped
input works too); /exit or end of input ends it. Each turn sends the whole
conversation again, and the daemon reuses the resident prefix (the system
prompt) instead of prefilling it again. Ctrl-C stops the reply in progress; at
the prompt it ends the chat (exit 130).

Without --model and --path the only model in the daemon's store is used.

${MODEL}

${DECODE}
  --stats             After each turn print the reused and prefilled tokens (stderr)

With --json, stdout has one JSON object per turn ({"turn","user","reply",
"thinking","toolCalls","interrupted","reusedTokens","prefilledTokens",...}).

${GLOBAL}`,

  embed: `Usage: modeldconn embed --model NAME [--path FILE] [--type TYPE] [TEXT...]

Prints the embedding vector of TEXT (or of stdin when no TEXT is given and stdin
is not a terminal) as a JSON array; with --json, {"model","dimensions","vector"}.
Needs a v0.32.4+ daemon and an embedding model.

${MODEL}

${GLOBAL}`,

  models: `Usage:
  modeldconn models ls                 List the models in the daemon's store
  modeldconn models push FILE [--name NAME] [--type TYPE] [--format file|tar]
                                       Upload a model (default name: the file name
                                       without its extension; type llama; format
                                       tar for a .tar file, else file)
  modeldconn models rm NAME            Remove a model from the store
  modeldconn models df                 Free and used space of the store's disk

The model store needs a v0.34.0+ daemon. push hashes the file, then streams it in
4 MiB frames, showing a progress bar (bytes, rate, ETA) when stdout is a terminal
and plain progress lines otherwise (none with --json). It needs --allow-read on
FILE as well as on the data root.

${GLOBAL}`,
};
COMMANDS.serve = `Usage: modeldconn serve [--data-root DIR] [--threads N] [--idle-ttl D]

Runs a modeld-compatible daemon with a llama.cpp engine in the foreground: it
takes DIR/modeld.lease, serves on 127.0.0.1, and keeps models in DIR/models.
Ctrl-C or SIGTERM stops it cleanly (calls finish, sessions close, the lease is
removed). Prints the endpoint on stdout.

  --threads N     Threads for models whose NumThreads is 0 (default: CPU cores)
  --idle-ttl D    Unload a model idle this long: 30s, 5m, 1h; 0/off/none never
                  (default 5m)
  --ttl D         The lease's time to live (default 30s, renewed every ttl/3)

Permissions: --allow-read and --allow-write on DIR, --allow-net=127.0.0.1,
--allow-ffi, and what node-llama-cpp needs (see the README).`;
COMMANDS.help = OVERVIEW;

/**
 * The help text for a command, or the overview.
 *
 * @param command A command name; `undefined` for the overview.
 * @returns The text, without a trailing newline.
 *
 * @example
 * ```ts
 * import { helpText } from "./help.ts";
 * console.assert(helpText("models").startsWith("Usage:"));
 * ```
 */
export function helpText(command?: string): string {
  return (command && COMMANDS[command]) || OVERVIEW;
}
