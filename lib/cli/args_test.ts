import assert from "node:assert/strict";
import { Flags, parseCli, UsageError } from "./args.ts";
import { ExitCode, exitCodeFor } from "./exit_codes.ts";
import {
  DaemonNotRunningError,
  DaemonStaleError,
  DaemonTooOldError,
  DaemonUnreachableError,
  InvalidArgumentError,
  ModelBusyError,
  PermissionNeededError,
  TimeoutError,
} from "../errors.ts";

Deno.test("parseCli: global flags anywhere, command flags after the command, -- ends flags", () => {
  const cli = parseCli([
    "--data-root",
    "/r",
    "generate",
    "-m",
    "qwen",
    "--json",
    "--timeout=500",
    "hello",
    "--",
    "--not-a-flag",
  ]);
  assert.equal(cli.command, "generate");
  assert.deepEqual(cli.global, { dataRoot: "/r", json: true, help: false, timeoutMs: 500 });
  assert.equal(cli.flags.string("model"), "qwen");
  assert.deepEqual(cli.positionals, ["hello", "--not-a-flag"]);
});

Deno.test("parseCli: a string flag before the command keeps its value", () => {
  const cli = parseCli(["--data-root", "status", "status"]);
  assert.equal(cli.global.dataRoot, "status");
  assert.equal(cli.command, "status");
  assert.deepEqual(cli.positionals, []);
});

Deno.test("parseCli: flags of another command are rejected", () => {
  assert.throws(() => parseCli(["status", "--model", "x"]), UsageError);
  assert.throws(() => parseCli(["models", "ls", "--stats"]), /Unknown option '--stats'/);
});

Deno.test("parseCli: a string flag without its value, a boolean flag with one, a short flag's joined value", () => {
  assert.throws(() => parseCli(["generate", "--model"]), /Option '--model' needs a value/);
  assert.throws(() => parseCli(["generate", "-m", "--json"]), /Option '-m' needs a value/);
  assert.throws(() => parseCli(["status", "--json=yes"]), /Option '--json' does not take a value/);
  const cli = parseCli(["generate", "-mqwen", "--max-tokens", "-5", "-", "hi"]);
  assert.equal(cli.flags.string("model"), "qwen");
  assert.equal(cli.flags.string("max-tokens"), "-5");
  assert.deepEqual(cli.positionals, ["-", "hi"]);
});

Deno.test("parseCli: no command, unknown command, help", () => {
  assert.equal(parseCli([]).command, undefined);
  assert.equal(parseCli(["-h"]).global.help, true);
  assert.throws(() => parseCli(["nope"]), /Unknown command "nope"/);
});

Deno.test("Flags: typed accessors validate and name the flag", () => {
  const flags = new Flags({ a: "12", b: "x", c: "0.25", d: "-3", seed: "9223372036854775808" });
  assert.equal(flags.int("a", { min: 1 }), 12);
  assert.equal(flags.int("missing"), undefined);
  assert.throws(() => flags.int("b"), /Invalid --b "x": pass an integer/);
  assert.throws(() => flags.int("c"), /pass an integer/);
  assert.throws(() => flags.int("d", { min: 0 }), /pass an integer of at least 0/);
  assert.equal(flags.float("c", { min: 0, max: 1 }), 0.25);
  assert.throws(() => flags.float("b"), /pass a number/);
  assert.equal(flags.bigint("a"), 12n);
  assert.throws(() => flags.bigint("seed"), /64-bit/);
});

Deno.test("exitCodeFor: one code per error class", () => {
  const init = { grpcCode: 9, detail: "busy" };
  assert.equal(exitCodeFor(new UsageError("x")), ExitCode.Usage);
  assert.equal(exitCodeFor(new InvalidArgumentError("x")), ExitCode.Usage);
  assert.equal(exitCodeFor(new DaemonNotRunningError("/r")), ExitCode.NotRunning);
  assert.equal(exitCodeFor(new DaemonStaleError("/r", "i")), ExitCode.NotRunning);
  assert.equal(exitCodeFor(new DaemonUnreachableError("/r", "e", "x")), ExitCode.Unreachable);
  assert.equal(exitCodeFor(new TimeoutError("Decode")), ExitCode.Unreachable);
  assert.equal(exitCodeFor(new DaemonTooOldError("Status")), ExitCode.TooOld);
  assert.equal(exitCodeFor(new ModelBusyError(init)), ExitCode.Daemon);
  assert.equal(
    exitCodeFor(new PermissionNeededError("--allow-net", "127.0.0.1", "dial")),
    ExitCode.Permission,
  );
  assert.equal(exitCodeFor(new Deno.errors.NotCapable("no")), ExitCode.Permission);
  assert.equal(exitCodeFor(new Error("x")), ExitCode.Error);
});
