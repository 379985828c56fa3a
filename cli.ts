/**
 * The `modeldconn` command line: `status`, `describe`, `generate`, `chat`,
 * `embed` and `models ls | push | rm | df` against the local modeld, found
 * through its lease. Run it straight from JSR:
 *
 * ```sh
 * deno run --allow-read=$HOME/.contenox --allow-net=127.0.0.1 \
 *   --allow-env=CONTENOX_DATA_ROOT,HOME jsr:@contenox/modeldconn/cli generate "Hello"
 * ```
 *
 * or without `--allow-env`, naming the data root:
 * `deno run --allow-read=$HOME/.contenox --allow-net=127.0.0.1 jsr:@contenox/modeldconn/cli --data-root $HOME/.contenox status`.
 * `--help` lists the commands, flags and exit codes.
 *
 * @example Run the CLI from code (e.g. in a test)
 * ```ts ignore
 * import { main } from "@contenox/modeldconn/cli";
 *
 * const code = await main(["status", "--json"]);
 * console.log(`exit ${code}`);
 * ```
 *
 * @module
 */

export { main } from "./lib/cli/main.ts";
export type { CliIo, TextSink, TextSource } from "./lib/cli/io.ts";
export { ExitCode } from "./lib/cli/exit_codes.ts";

import { main } from "./lib/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
