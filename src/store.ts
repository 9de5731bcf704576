// --store FILE: every message appended as NDJSON, written before stdout and
// fsynced at most ~100 ms behind. A failing disk is reported, never fatal.
import { closeSync, constants, fstatSync, fsync, fsyncSync, openSync, readSync, writeSync } from "node:fs";
import { dupFd } from "./ffi/libc.ts";
import { PostboxError, errnoName, reason } from "./errors.ts";
import type { ByteSink } from "./format.ts";
import { log } from "./log.ts";
import { ownedOrClosed } from "./endpoint.ts";

const SYNC_MS = 100;
/** Lines kept while the file cannot be written (disk full…), before new ones are counted as lost. */
const MAX_BACKLOG = 8 << 20;
const REPORT_EVERY_MS = 10_000;

export class Store implements ByteSink {
  private fd: number;
  /** Lines not written yet: buf[0, len), appended by the sink (see admit). */
  buf = new Uint8Array(64 << 10);
  view = new DataView(this.buf.buffer);
  len = 0;
  /** What a failed write left, as bytes: a retry writes exactly these (a record may be cut mid-character). */
  private pending: Uint8Array | null = null;
  private syncTimer: Timer | undefined;
  /** Counts sync() calls: a background fsync that finishes after one has nothing to report. */
  private syncs = 0;
  private syncing = false;
  private failing = false;
  private lost = 0;
  private lastReport = -Infinity;
  /** Called after each successful fsync with the file's identity and durable size (the forwarder reads up to there). */
  onSynced: ((file: { dev: number; ino: number; size: number }) => void) | undefined;

  constructor(
    readonly path: string,
    private readonly report: (level: "error" | "info", message: string) => void,
    /** An existing store file must be ours and no wider (--mode). */
    private readonly maxMode = 0o600,
  ) {
    this.fd = this.open();
  }

  private open(): number {
    const pipe = "it is a FIFO or a socket, not a file (writing to it would block postbox)";
    let fd: number;
    try {
      // O_NOFOLLOW: a symlink planted at the path must not make us append to (or "seal") its target.
      // O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader (ENXIO instead).
      fd = openSync(this.path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
    } catch (err) {
      const code = errnoName(err);
      const why = code === "ELOOP" ? "it is a symlink (postbox never writes through one); give the file itself" : code === "ENXIO" ? pipe : reason(err);
      throw new PostboxError(`cannot open the store ${this.path}: ${why}`);
    }
    if (fstatSync(fd).isFIFO()) {
      closeSync(fd);
      throw new PostboxError(`cannot open the store ${this.path}: ${pipe}`);
    }
    try {
      if (fstatSync(fd).isFile()) ownedOrClosed(fd, this.maxMode); // never another user's file, nor one wider than --mode
    } catch (err) {
      throw new PostboxError(`cannot open the store ${this.path}: ${reason(err)}`);
    }
    this.seal(fd);
    return fd;
  }

  /**
   * A crash (kill -9, power loss) can cut the last record short; appending to it
   * would glue the next record on. End it with a newline so it stays one bad line.
   */
  private seal(fd: number): void {
    let size: number;
    let rfd: number;
    try {
      const st = fstatSync(fd);
      size = st.isFile() ? st.size : 0;
      if (size === 0) return;
      rfd = openSync(`/proc/self/fd/${fd}`, constants.O_RDONLY); // the same file, readable
    } catch {
      return; // a device, or cannot be read back: nothing to check
    }
    try {
      const start = tornStart(rfd, size);
      if (start === size) return;
      writeSync(fd, "\n");
      this.report("error", `the store ${this.path} ended in a torn record at byte ${start} (${size - start} bytes, a crash mid-write?); sealed it with a newline`);
    } catch (err) {
      this.report("error", `cannot check the end of the store ${this.path}: ${reason(err)}`);
    } finally {
      closeSync(rfd);
    }
  }

  /** May one more record be appended? False (and it is counted as lost) while the backlog is full. */
  admit(): boolean {
    if (this.len + (this.pending?.byteLength ?? 0) <= MAX_BACKLOG) return true;
    this.lost++;
    return false;
  }

  /** Room for n more bytes: the buffer grows (it is written out at the next flush). */
  reserve(n: number): void {
    if (this.len + n <= this.buf.byteLength) return;
    const grown = new Uint8Array(Math.max(this.buf.byteLength * 2, this.len + n));
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }

  /** Write what is buffered; keep it (bounded) when the write fails, to retry at the next flush. */
  flush(): void {
    if (this.pending !== null && !this.write(this.pending)) return;
    if (this.len > 0) {
      const n = this.len;
      this.len = 0;
      if (!this.write(this.buf.subarray(0, n))) return;
    }
    if (this.failing) {
      this.failing = false;
      this.report("info", `the store ${this.path} is writable again${this.lost ? `; ${this.lost} message(s) could not be kept` : ""}`);
      this.lost = 0;
    }
    this.syncTimer ??= setTimeout(() => this.syncInBackground(), SYNC_MS);
  }

  /** All of bytes, or false with what is left in pending. */
  private write(bytes: Uint8Array): boolean {
    let off = 0;
    try {
      while (off < bytes.byteLength) off += writeSync(this.fd, bytes, off);
    } catch (err) {
      this.pending = bytes.slice(off); // a copy: buf is reused
      this.fail(err);
      return false;
    }
    this.pending = null;
    return true;
  }

  /**
   * The timer's fsync runs on Bun's thread pool, on a dup of the file (never on
   * an fd number that close or reopen may have handed to another file): the
   * loop goes on taking messages meanwhile. Durable is what was written before it started.
   */
  private syncInBackground(): void {
    this.syncTimer = undefined;
    if (this.syncing) {
      this.syncTimer = setTimeout(() => this.syncInBackground(), SYNC_MS);
      return;
    }
    let fd: number;
    let file: { dev: number; ino: number; size: number };
    try {
      fd = dupFd(this.fd);
    } catch {
      return this.sync();
    }
    try {
      const st = fstatSync(fd);
      file = { dev: st.dev, ino: st.ino, size: st.size };
    } catch (err) {
      closeSync(fd);
      return this.fail(err);
    }
    const gen = this.syncs;
    this.syncing = true;
    fsync(fd, (err) => {
      this.syncing = false;
      closeSync(fd);
      if (gen !== this.syncs) return; // a sync() since has made (and reported) more durable
      if (err) return this.syncFailed(err);
      log.debug(`store ${this.path}: fsynced`);
      this.onSynced?.(file);
    });
  }

  sync(): void {
    clearTimeout(this.syncTimer);
    this.syncTimer = undefined;
    this.syncs++;
    try {
      fsyncSync(this.fd);
      log.debug(`store ${this.path}: fsynced`);
      if (this.onSynced) {
        const st = fstatSync(this.fd);
        this.onSynced({ dev: st.dev, ino: st.ino, size: st.size });
      }
    } catch (err) {
      this.syncFailed(err);
    }
  }

  private syncFailed(err: unknown): void {
    // character devices and pipes cannot be synced: nothing to make durable there
    if (errnoName(err) !== "EINVAL" && errnoName(err) !== "EROFS") this.fail(err);
  }

  /** SIGHUP: the file may have been rotated away; append to whatever is at the path now. */
  reopen(): void {
    this.flush();
    this.sync();
    const next = this.open();
    closeSync(this.fd);
    this.fd = next;
  }

  /** Returns how many messages were printed but not kept (the exit status must say so). */
  close(): number {
    this.flush();
    this.sync();
    closeSync(this.fd);
    const records = (b: Uint8Array | null) => b?.filter((c) => c === 10).length ?? 0;
    const unstored = records(this.buf.subarray(0, this.len)) + records(this.pending) + this.lost;
    if (unstored > 0) this.report("error", `${unstored} message(s) were printed but could not be kept in the store ${this.path}`);
    return unstored;
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

/** Where the last record starts when the file does not end in a newline (size when it does). */
function tornStart(fd: number, size: number): number {
  const chunk = Buffer.alloc(64 << 10);
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - chunk.byteLength);
    const n = readSync(fd, chunk, 0, end - start, start);
    const nl = chunk.subarray(0, n).lastIndexOf(10);
    if (end === size && chunk[n - 1] === 10) return size;
    if (nl !== -1) return start + nl + 1;
    end = start;
  }
  return 0;
}
