/**
 * Starts the hostile h2c server (tests/faults/go/cmd/hostile, built by
 * tests/faults/build.sh): one loopback listener per misbehaviour.
 *
 * @example
 * ```ts ignore
 * await using hostile = await startHostile();
 * const addr = hostile.addr("headersonly");
 * ```
 *
 * @module
 */

/** A running hostile server. */
export interface Hostile extends AsyncDisposable {
  /** The `host:port` of the listener that behaves as `mode` says. */
  addr(mode: string): string;
}

/** The built binary. */
export const HOSTILE_BIN = "tests/faults/bin/hostile";

/**
 * Spawns the hostile server and waits for its listeners.
 *
 * @returns The server; dispose it to stop it.
 */
export async function startHostile(): Promise<Hostile> {
  const child = new Deno.Command(HOSTILE_BIN, {
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const addrs = new Map<string, string>();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  while (!buffered.includes("ready\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("hostile: exited before it was ready");
    buffered += value;
  }
  await reader.cancel();
  for (const line of buffered.split("\n")) {
    const [mode, addr] = line.split(" ");
    if (addr) addrs.set(mode, addr);
  }
  return {
    addr(mode: string): string {
      const addr = addrs.get(mode);
      if (!addr) throw new Error(`hostile: no mode ${mode}`);
      return addr;
    },
    async [Symbol.asyncDispose]() {
      await child.stdin.close();
      await child.status;
    },
  };
}
