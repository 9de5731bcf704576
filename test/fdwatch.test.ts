import { describe, expect, test } from "bun:test";
import { readSync } from "node:fs";
import { watchReadable } from "../src/channels/fdwatch.ts";
import { closeFd, eventFd, raiseEventFd } from "../src/ffi/libc.ts";
import { until } from "./harness.ts";

// An eventfd stands in for a queue: readable while its counter is non-zero, drained by one read.
describe("watchReadable", () => {
  test("tells once per arming; level-triggered: re-armed while still readable, it tells again", async () => {
    const fd = eventFd();
    let told = 0;
    const failures: string[] = [];
    const watch = watchReadable(fd, () => told++, (why) => failures.push(why));
    try {
      raiseEventFd(fd);
      await until(() => told === 1, "the first wake-up");
      watch.rearm(); // not drained: it is still readable
      await until(() => told === 2, "a wake-up for data that was never read");
      readSync(fd, Buffer.alloc(8)); // drained
      watch.rearm();
      raiseEventFd(fd); // new data after the re-arm
      await until(() => told === 3, "a wake-up for new data");
      expect(failures).toEqual([]);
    } finally {
      watch.close();
      watch.close(); // safe twice
      closeFd(fd);
    }
  });

  test("an fd that is not open is a failure, not a wake-up", async () => {
    const fd = 999_999; // a just-closed number would be reused by the watcher's own eventfd
    let told = 0;
    let failed = "";
    const watch = watchReadable(fd, () => told++, (why) => (failed = why));
    try {
      await until(() => failed !== "", "the failure");
      expect(failed).toMatch(/EBADF/);
      expect(told).toBe(0);
    } finally {
      watch.close();
    }
  });
});
