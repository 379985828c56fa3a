import assert from "node:assert/strict";
import { parseEndpoint } from "./endpoint.ts";
import { InvalidArgumentError, InvalidEndpointError } from "./errors.ts";

Deno.test("parseEndpoint: what Go writes and dials", () => {
  const cases: [string, string, boolean][] = [
    ["127.0.0.1:40517", "127.0.0.1:40517", false],
    ["[::1]:40517", "[::1]:40517", false],
    ["[0:0:0:0:0:0:0:1]:9", "[::1]:9", false],
    ["localhost:80", "localhost:80", false],
    ["GPU-box.lan:40517", "gpu-box.lan:40517", false],
    ["[127.0.0.1]:80", "127.0.0.1:80", false], // Go's SplitHostPort takes it too
    ["[::]:40517", "127.0.0.1:40517", true],
    ["[::ffff:0.0.0.0]:1", "127.0.0.1:1", true],
    ["0.0.0.0:40517", "127.0.0.1:40517", true],
    [":40517", "127.0.0.1:40517", true],
    ["10.0.0.7:65535", "10.0.0.7:65535", false],
  ];
  for (const [text, authority, wildcard] of cases) {
    const ep = parseEndpoint(text);
    assert.equal(ep.authority, authority, text);
    assert.equal(ep.url, `http://${authority}`, text);
    assert.equal(ep.wildcard, wildcard, text);
    assert.equal(ep.text, text);
  }
});

Deno.test("parseEndpoint: refuses what Go cannot dial, with the reason", () => {
  const cases: [string, RegExp][] = [
    ["[::1", /missing '\]'/],
    ["[::1]", /missing port/],
    ["127.0.0.1", /missing port/],
    ["127.0.0.1:1 ", /spaces/],
    ["user@127.0.0.1:1", /neither an IP address nor a host name/],
    ["127.0.0.1:1@203.0.113.5:443", /too many colons/],
    ["http://127.0.0.1:1", /too many colons/],
    ["127.0.0.1:99999", /out of range/],
    ["127.0.0.1:0", /out of range/],
    ["127.0.0.1:http", /invalid port/],
    ["0x7f000001:80", /legacy numeric IPv4 form\); write 127\.0\.0\.1/],
    ["127.1:80", /write 127\.0\.0\.1/],
    ["2130706433:80", /write 127\.0\.0\.1/],
    ["0177.0.0.1:80", /write 127\.0\.0\.1/],
    ["999.0.0.1:80", /neither an IP address nor a host name/],
    ["f.0.0.0:9", /host name that can be dialled/],
    ["[fe80::1%eth0]:80", /neither an IP address nor a host name/],
    ["", /empty/],
    ["a".repeat(400) + ":1", /characters long/],
  ];
  for (const [text, reason] of cases) {
    assert.throws(() => parseEndpoint(text), (err: unknown) => {
      assert.ok(err instanceof InvalidEndpointError, text);
      assert.ok(err instanceof InvalidArgumentError);
      assert.equal(err.retryable, false);
      assert.match(err.reason, reason, `${JSON.stringify(text)}: ${err.reason}`);
      assert.ok(err.message.length < 400);
      return true;
    });
  }
});

Deno.test("parseEndpoint fuzz: 20000 endpoint-like strings parse to a dialable URL or an InvalidEndpointError", () => {
  let seed = 0xe7d90;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x80000000;
  };
  const alphabet = "0123456789abcdefx.:[]@/%# -_\u0000\u00e9ABCF";
  const seeds = ["127.0.0.1:40517", "[::1]:1", "0.0.0.0:9", "[::]:80", "localhost:1", ":5"];
  let ok = 0;
  for (let n = 0; n < 20_000; n++) {
    let s = seeds[n % seeds.length];
    for (let k = Math.floor(rand() * 4); k >= 0; k--) {
      const i = Math.floor(rand() * (s.length + 1));
      const c = alphabet[Math.floor(rand() * alphabet.length)];
      s = rand() < 0.5 ? s.slice(0, i) + c + s.slice(i) : s.slice(0, i) + c + s.slice(i + 1);
    }
    try {
      const ep = parseEndpoint(s);
      const url = new URL(ep.url); // a URL parser must not rewrite the host
      assert.equal(`${url.hostname}:${url.port || "80"}`, ep.authority, s);
      assert.ok(ep.port >= 1 && ep.port <= 65535);
      ok++;
    } catch (err) {
      assert.ok(err instanceof InvalidEndpointError, `${JSON.stringify(s)}: ${err}`);
    }
  }
  assert.ok(ok > 0);
});
