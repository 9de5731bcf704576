// --store FILE: every message appended as NDJSON, written before stdout and
// fsynced at most ~100 ms behind. A failing disk is reported, never fatal.
import { closeSync, constants, fsyncSync, openSync, writeSync } from "node:fs";
import { PostboxError, errnoName, reason } from "./errors.ts";

const SYNC_MS = 100;
/** Lines kept while the file cannot be written (disk full…), before new ones are counted as lost. */
const MAX_BACKLOG = 8 << 20;
const REPORT_EVERY_MS = 10_000;

export class Store {
  private fd: number;
  private buffer = "";
  private syncTimer: Timer | undefined;
  private failing = false;
  private lost = 0;
  private lastReport = -Infinity;

  constructor(
    readonly path: string,
    private readonly report: (level: "error" | "info", message: string) => void,
  ) {
    this.fd = this.open();
  }

  private open(): number {
    try {
      return openSync(this.path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
    } catch (err) {
      throw new PostboxError(`cannot open the store ${this.path}: ${reason(err)}`);
    }
  }

  append(line: string): void {
    if (this.buffer.length > MAX_BACKLOG) {
      this.lost++;
      return;
    }
    this.buffer += line + "\n";
  }

  /** Write what is buffered; keep it (bounded) when the write fails, to retry at the next flush. */
  flush(): void {
    if (this.buffer === "") return;
    const bytes = Buffer.from(this.buffer);
    let off = 0;
    try {
      while (off < bytes.byteLength) off += writeSync(this.fd, bytes, off);
    } catch (err) {
      this.buffer = bytes.subarray(off).toString();
      this.fail(err);
      return;
    }
    this.buffer = "";
    if (this.failing) {
      this.failing = false;
      this.report("info", `the store ${this.path} is writable again${this.lost ? `; ${this.lost} message(s) could not be kept` : ""}`);
      this.lost = 0;
    }
    this.syncTimer ??= setTimeout(() => this.sync(), SYNC_MS);
  }

  sync(): void {
    clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    try {
      fsyncSync(this.fd);
    } catch (err) {
      // character devices and pipes cannot be synced: nothing to make durable there
      if (errnoName(err) !== "EINVAL" && errnoName(err) !== "EROFS") this.fail(err);
    }
  }

  /** SIGHUP: the file may have been rotated away; append to whatever is at the path now. */
  reopen(): void {
    this.flush();
    this.sync();
    const next = this.open();
    closeSync(this.fd);
    this.fd = next;
  }

  close(): void {
    this.flush();
    this.sync();
    closeSync(this.fd);
    const unstored = (this.buffer.match(/\n/g)?.length ?? 0) + this.lost;
    if (unstored > 0) this.report("error", `${unstored} message(s) were printed but could not be kept in the store ${this.path}`);
  }

  private fail(err: unknown): void {
    const now = performance.now();
    if (this.failing && now - this.lastReport < REPORT_EVERY_MS) return;
    this.failing = true;
    this.lastReport = now;
    const lost = this.lost ? `; ${this.lost} message(s) could not be kept` : "";
    this.report("error", `cannot write to the store ${this.path}: ${reason(err)}; messages still go to stdout, retrying${lost}`);
  }
}
