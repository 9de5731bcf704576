import { describe, expect, test } from "bun:test";
import { notifiesEveryPipeWrite } from "../src/channels/reader.ts";

describe("which kernels wake the FIFO reader through inotify", () => {
  test("from Linux 6.6 on (splice, vmsplice and tee raise IN_MODIFY there), never on a release it cannot read", () => {
    const on = ["6.6.0", "6.6.1-arch1-1", "6.18.44", "7.0.0", "10.2"];
    const off = ["6.5.13", "6.1.0-27-amd64", "5.15.0-122-generic", "4.19.0", "3.10.0-1160.el7.x86_64", "", "garbage"];
    expect(on.map(notifiesEveryPipeWrite)).toEqual(on.map(() => true));
    expect(off.map(notifiesEveryPipeWrite)).toEqual(off.map(() => false));
  });
});
