// postbox log: the --store mailbox read back, like journalctl: filters, the last
// n (read from the end), newest first, or followed across rotation.
import { constants, fstatSync, openSync, readSync } from "node:fs";
import { isatty } from "node:tty";
import { EXIT, PostboxError, UsageError, errnoName, reason } from "../errors.ts";
import { log } from "../log.ts";
import { parseLog } from "../options.ts";
import { Output } from "../output.ts";
import { Follower } from "./follower.ts";
import { matches, parseRecord, writeRecord, type LogFilter, type LogOptions, type StoredRecord } from "./records.ts";
import { MAX_LINE, StoreFile, ForwardLines, backwardLines } from "./store-reader.ts";

/** Bad lines warned about one by one in each file; the rest are counted in one line. */
const WARN_LINES = 10;
const STEP = 8 << 20;

export async function logCommand(raw: string[]): Promise<number> {
  await runLog(parseLog(raw));
  return EXIT.ok;
}

/** Open a store without following a symlink; a FIFO or a pipe is read in sequence. */
function openStore(name: string): StoreFile {
  if (name === "-") return new StoreFile("stdin", 0, fstatSync(0).isFile());
  let fd: number;
  try {
    fd = openSync(name, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const why = errnoName(err) === "ELOOP" ? "it is a symbolic link (postbox never follows one; name the file it points to)" : reason(err);
    throw new PostboxError(`cannot open ${name}: ${why}`);
  }
  const st = fstatSync(fd);
  const file = new StoreFile(name, fd, st.isFile());
  if (st.isDirectory()) {
    file.close();
    throw new PostboxError(`cannot open ${name}: it is a directory`);
  }
  return file;
}

/** Per file: warnings for bad lines, at most WARN_LINES of them, then a count. */
class Complaints {
  private bad = new Map<StoreFile, number>();

  line(file: StoreFile, offset: number, lineNo: number, what: string): void {
    const n = (this.bad.get(file) ?? 0) + 1;
    this.bad.set(file, n);
    if (n <= WARN_LINES) log.warn(`${file.name}:${lineNo || file.lineAt(offset)}: ${what}; skipped`);
  }

  cut(file: StoreFile, offset: number, lineNo: number): void {
    log.warn(`${file.name}:${lineNo || file.lineAt(offset)}: the last line has no newline (cut short by a crash, or still being written: -f waits for it); skipped`);
  }

  long(file: StoreFile, offset: number, lineNo: number): void {
    this.line(file, offset, lineNo, `longer than ${MAX_LINE >> 20} MiB, not a stored message`);
  }

  done(file: StoreFile): void {
    const n = this.bad.get(file) ?? 0;
    if (n > WARN_LINES) log.warn(`${file.name}: ${n - WARN_LINES} more bad line(s) skipped`);
  }
}

export async function runLog(opts: LogOptions): Promise<void> {
  let names = opts.files;
  if (names.length === 0) {
    if (isatty(0)) throw new UsageError("no store to read: name it (postbox log mail.ndjson, the file given to serve --store) or pipe it in");
    names = ["-"];
  }
  const failures: string[] = [];
  const files: StoreFile[] = [];
  for (const name of names) {
    try {
      const f = openStore(name);
      if (notNdjson(f)) f.close();
      else files.push(f);
    } catch (err) {
      if (!(err instanceof PostboxError)) throw err;
      failures.push(err.message);
    }
  }
  if (opts.reverse && opts.lines === null && files.some((f) => !f.seekable))
    throw new UsageError("--reverse reads from the end: stdin is not a file here (add -n N, or save it to a file first)");
  const followed = opts.follow && names.at(-1) !== "-" && files.at(-1)?.name === names.at(-1) && files.at(-1)!.seekable ? files.at(-1)! : null;

  // Ends the run cleanly: EPIPE (postbox log | head), or SIGINT/SIGTERM with -f (exit 0).
  let closed = false;
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stop = () => {
      closed = true;
      resolve();
    };
  });
  const out = new Output(1, () => stop());
  if (followed) for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => stop());
  const complaints = new Complaints();
  const take = (file: StoreFile, text: string, offset: number, lineNo: number): StoredRecord | null => {
    const r = parseRecord(text);
    if (typeof r === "string") {
      complaints.line(file, offset, lineNo, r);
      return null;
    }
    return matches(opts.filter, r) ? r : null;
  };
  const print = (r: StoredRecord) => writeRecord(out, r, opts);
  const reader = (file: StoreFile, start: number, firstLine: number) =>
    new ForwardLines(
      file,
      start,
      firstLine,
      (text, offset, lineNo) => {
        const r = take(file, text, offset, lineNo);
        if (r) print(r);
      },
      (offset, lineNo) => complaints.long(file, offset, lineNo),
    );

  let follow: ForwardLines | null = null;
  if (opts.reverse) {
    // newest first, from the newest file backwards, printed as found
    let left = opts.lines ?? Infinity;
    for (let i = files.length - 1; i >= 0 && left > 0 && !closed; i--) left -= backwards(files[i]!, left, print, take, complaints);
  } else {
    // Oldest first: from where the last n begin (found backwards), read forwards,
    // so that memory stays bounded however large n is. Only the part read is checked.
    const all = opts.lines === null && opts.filter.since === null;
    const start = all ? { index: 0, offset: 0, last: 0 } : startOfLast(files, opts.lines ?? Infinity, opts.filter);
    for (let i = start.index; i < files.length && !closed; i++) {
      const file = files[i]!;
      if (i === start.index && start.last > 0) {
        backwards(file, start.last, print, take, complaints, true); // a pipe: its last n, kept in a ring
        continue;
      }
      const from = i === start.index ? start.offset : 0;
      const lines = reader(file, from, from === 0 ? 1 : 0);
      // with -f, a long first read lets SIGINT in between steps
      while (!closed && lines.read(STEP)) if (followed) await new Promise((resolve) => setImmediate(resolve));
      if (file === followed) follow = lines;
      else lines.end((offset, lineNo) => complaints.cut(file, offset, lineNo));
    }
  }
  for (const f of files) complaints.done(f);
  out.flush();

  if (follow !== null && !closed) {
    const follower = new Follower(followed!.name, follow, {
      open: openStore,
      reader,
      retire: (old) => old.end((offset, lineNo) => complaints.cut(old.file, offset, lineNo)),
      warn: (m) => log.warn(m),
    });
    follower.start();
    await stopped;
    follower.stop();
  }
  out.flush();
  for (const f of files) if (f !== followed) f.close();
  if (failures.length > 0) throw new PostboxError(failures.join("; "));
}

/** A store starts with "{": anything else is not one (one warning, the file skipped). */
function notNdjson(file: StoreFile): boolean {
  if (!file.seekable) return false;
  const first = Buffer.alloc(1);
  if (fstatSync(file.fd).size === 0) return false;
  readSync(file.fd, first, 0, 1, 0);
  if (first[0] === 0x7b) return false;
  log.warn(`${file.name}:1: not NDJSON (a postbox store holds one JSON object per line); file skipped`);
  return true;
}

/**
 * Where the last n matching records begin, counted from the end of the newest file
 * backwards (nothing printed or warned about here: the forward read that follows
 * does both). With --since the count also stops at the first record older than
 * that: the store is in time order, so nothing before it can match (a clock set
 * back while serving is the exception). A pipe on the way cannot be read
 * backwards: then `last` says how many of its records are still wanted.
 */
function startOfLast(files: readonly StoreFile[], n: number, filter: LogFilter): { index: number; offset: number; last: number } {
  let found = 0;
  for (let i = files.length - 1; i >= 0; i--) {
    const file = files[i]!;
    if (!file.seekable) return { index: i, offset: 0, last: Number.isFinite(n) ? n - found : 0 };
    const size = fstatSync(file.fd).size;
    let after = size; // where the line after the current one starts
    for (const line of backwardLines(file, size, () => {})) {
      if (!line.complete) {
        after = line.offset;
        continue;
      }
      if (n === 0) break; // (with -f) start after the last complete line
      const r = parseRecord(line.text);
      if (typeof r !== "string") {
        if (filter.since !== null && Date.parse(r.ts) < filter.since) return { index: i, offset: after, last: 0 };
        if (matches(filter, r) && ++found === n) return { index: i, offset: line.offset, last: 0 };
      }
      after = line.offset;
    }
    if (n === 0) return { index: i, offset: after, last: 0 };
  }
  return { index: 0, offset: 0, last: 0 };
}

/**
 * One file from its end: up to `limit` matching records handed to keep, newest
 * first (or with oldestFirst, in order); returns how many. A pipe is read forwards,
 * keeping the last `limit` in a ring.
 */
function backwards(
  file: StoreFile,
  limit: number,
  keep: (r: StoredRecord) => void,
  take: (file: StoreFile, text: string, offset: number, lineNo: number) => StoredRecord | null,
  complaints: Complaints,
  oldestFirst = false,
): number {
  if (!file.seekable) {
    const ring: StoredRecord[] = [];
    let next = 0;
    const lines = new ForwardLines(
      file,
      0,
      1,
      (text, offset, lineNo) => {
        const r = take(file, text, offset, lineNo);
        if (!r || limit <= 0) return;
        if (ring.length < limit) ring.push(r);
        else ring[next] = r;
        next = (next + 1) % limit;
      },
      (offset, lineNo) => complaints.long(file, offset, lineNo),
    );
    while (lines.read()) {}
    lines.end((offset, lineNo) => complaints.cut(file, offset, lineNo));
    const inOrder = ring.length < limit ? ring : [...ring.slice(next), ...ring.slice(0, next)];
    if (!oldestFirst) inOrder.reverse();
    inOrder.forEach(keep);
    return ring.length;
  }
  let count = 0;
  for (const line of backwardLines(file, fstatSync(file.fd).size, (offset) => complaints.long(file, offset, 0))) {
    if (!line.complete) {
      complaints.cut(file, line.offset, 0);
      continue;
    }
    if (count >= limit) break;
    const r = take(file, line.text, line.offset, 0);
    if (r) {
      keep(r);
      count++;
    }
  }
  return count;
}
