/**
 * A start-up probe of bench/side_by_side.ts: load the package and read the
 * lease once (never dials). Run with `--allow-read=DATA_ROOT` and the data
 * root as the only argument; prints `true` or `false`.
 *
 * @module
 */
import { available, setDataRoot } from "@contenox/modeldconn";

setDataRoot(Deno.args[0]);
console.log(await available());
