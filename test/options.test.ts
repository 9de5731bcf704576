import { describe, expect, test } from "bun:test";
import { parseServe } from "../src/options.ts";
import { UsageError } from "../src/errors.ts";
import { DEFAULTS } from "../src/types.ts";

describe("parseServe", () => {
  test("defaults", () => {
    const o = parseServe([]);
    expect(o).toMatchObject({ fifo: "fifo", socket: "socket", abstract: null, mq: "/postbox", mode: 0o600, json: false });
    expect(o).toMatchObject({ maxMessage: DEFAULTS.maxMessage, maxConnections: 1024, idleTimeout: 60, linger: 100 });
    expect(o.signals).toEqual([10, 12]);
  });

  test("--no-X turns channels off, values are taken", () => {
    const o = parseServe(["--no-fifo", "--socket", "s", "--abstract=@box", "--no-mq", "--signals", "RTMIN,RTMIN+2,RTMAX-1", "--mode", "666"]);
    expect(o).toMatchObject({ fifo: null, socket: "s", abstract: "box", mq: null, mode: 0o666 });
    expect(o.signals).toEqual([34, 36, 63]);
  });

  for (const bad of [
    ["--sockt", "x"],
    ["--fifo"],
    ["--json=1"],
    ["stray"],
    ["--mode", "999"],
    ["--max-message", "0"],
    ["--linger", "-1"],
    ["--signals", "HUP"],
    ["--signals", "RTMIN+99"],
    ["--mq", "noslash"],
    ["--no-fifo", "--no-socket", "--no-mq", "--no-signals"],
    ["-q", "-v"],
    ["--socket", "s".repeat(108)],
    ["--abstract", "a".repeat(108)],
  ]) {
    test(`usage error: ${bad.join(" ")}`, () => {
      expect(() => parseServe(bad)).toThrow(UsageError);
    });
  }
});
