// The start-up baseline of bench/side_by_side.ts: `deno run` of a script that does nothing.
