import { describe, expect, test } from "bun:test";
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { notifiesEveryPipeWrite, readPipe } from "../src/channels/reader.ts";
import { mknod, O_NONBLOCK, O_RDONLY, O_WRONLY, S_IFIFO } from "../src/ffi/libc.ts";
import { tempDir, until } from "./harness.ts";

describe("which kernels wake the FIFO reader through inotify", () => {
  test("from Linux 6.6 on (splice, vmsplice and tee raise IN_MODIFY there), never on a release it cannot read", () => {
    const on = ["6.6.0", "6.6.1-arch1-1", "6.18.44", "7.0.0", "10.2"];
    const off = ["6.5.13", "6.1.0-27-amd64", "5.15.0-122-generic", "4.19.0", "3.10.0-1160.el7.x86_64", "", "garbage"];
    expect(on.map(notifiesEveryPipeWrite)).toEqual(on.map(() => true));
    expect(off.map(notifiesEveryPipeWrite)).toEqual(off.map(() => false));
  });
});

describe("readPipe", () => {
  // The mq reader thread ends by closing its pipe: a close is no write, and must still wake us.
  test("reports end of file when the last writer closes, after everything written", async () => {
    using dir = tempDir();
    const path = join(dir.path, "pipe");
    mknod(path, S_IFIFO | 0o600);
    const readEnd = openSync(path, O_RDONLY | O_NONBLOCK);
    const writeEnd = openSync(path, O_WRONLY);
    const got: string[] = [];
    let ended = false;
    let failed: unknown = null;
    const reader = readPipe(readEnd, (chunk) => got.push(Buffer.from(chunk).toString()), (err) => (failed = err), () => (ended = true));
    try {
      writeSync(writeEnd, "one\n");
      await until(() => got.join("") === "one\n", "the first write");
      writeSync(writeEnd, "two\n");
      closeSync(writeEnd);
      await until(() => ended, "end of file after the writer closed");
      expect({ got: got.join(""), failed, unwatched: reader.unwatched }).toEqual({ got: "one\ntwo\n", failed: null, unwatched: null });
    } finally {
      reader.stop();
      closeSync(readEnd);
    }
  });
});
