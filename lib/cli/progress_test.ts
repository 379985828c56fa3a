import assert from "node:assert/strict";
import { BufferSink } from "./io.ts";
import { Progress } from "./progress.ts";

const MiB = 1024 * 1024;

Deno.test("Progress: plain lines at each tenth, with rate and ETA, and a final line", () => {
  let now = 0;
  const sink = new BufferSink(false);
  const p = new Progress(sink, { label: "push m", total: 10 * MiB, now: () => now });
  for (let i = 1; i <= 10; i++) {
    now += 1000;
    p.update(i * MiB);
    p.update(i * MiB); // no duplicate line
  }
  p.finish();
  p.finish();
  const lines = sink.text.trim().split("\n");
  assert.equal(lines.length, 10); // 10%..90% and the final 100%
  assert.equal(lines[0], "push m   10%  1.0 MiB / 10.0 MiB  1.0 MiB/s  ETA 0:09");
  assert.equal(lines.at(-1), "push m  100%  10.0 MiB / 10.0 MiB  1.0 MiB/s  in 0:10");
});

Deno.test("Progress: a redrawn bar on a terminal, at most every 100 ms", () => {
  let now = 0;
  const sink = new BufferSink(true);
  const p = new Progress(sink, { label: "push", total: 100, now: () => now, barWidth: 10 });
  p.update(10);
  now += 50;
  p.update(20); // too soon: not drawn
  now += 100;
  p.update(50);
  p.finish();
  const frames = sink.text.split("\r").filter(Boolean);
  assert.equal(frames.length, 3);
  assert.match(frames[1], /^push {2}\[#####-----\] +50%/);
  assert.ok(sink.text.endsWith("\x1b[K\n"));
});

Deno.test("Progress: unknown total shows bytes and rate", () => {
  const sink = new BufferSink(false);
  const p = new Progress(sink, { label: "push", now: () => 1000 });
  p.update(2048);
  assert.match(sink.text, /^push {2}2\.0 KiB {2}\S+ \S+\/s\n$/);
});
