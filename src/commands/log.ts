// postbox log: the --store mailbox read back, like journalctl: filters, the last
// n (read from the end), newest first, or followed across rotation.
import { constants, fstatSync, openSync, readSync } from "node:fs";
import { isatty } from "node:tty";
import { EXIT, PostboxError, UsageError, errnoName, reason } from "../errors.ts";
import { log } from "../log.ts";
import { parseLog } from "../options.ts";
import { Output } from "../output.ts";
import { Follower } from "./follower.ts";
import { matches, parseRecord, writeRecord, type LogOptions, type StoredRecord } from "./records.ts";
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
  if (opts.lines === null && !opts.reverse) {
    for (const file of files) {
      const lines = reader(file, 0, 1);
      // with -f, a long first read lets SIGINT in between steps
      while (!closed && lines.read(STEP)) if (followed) await new Promise((resolve) => setImmediate(resolve));
      if (file === followed) follow = lines;
      else lines.end((offset, lineNo) => complaints.cut(file, offset, lineNo));
    }
  } else {
    // From the newest file backwards: the last n that match, or all of them newest first.
    const limit = opts.lines ?? Infinity;
    const picked: StoredRecord[] = [];
    const keep = (r: StoredRecord) => (opts.reverse ? print(r) : picked.push(r));
    let found = 0;
    for (let i = files.length - 1; i >= 0 && found < limit && !closed; i--) {
      const file = files[i]!;
      const { count, tail } = backwards(file, limit - found, keep, take, complaints, file === followed);
      found += count;
      if (file === followed) follow = reader(file, tail, 0);
    }
    for (let i = picked.length - 1; i >= 0 && !closed; i--) print(picked[i]!);
    if (followed && follow === null) follow = reader(followed, followedEnd(followed), 0);
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

/** Where following starts when -n 0 picked nothing from the followed file: after its last complete line. */
function followedEnd(file: StoreFile): number {
  const first = backwardLines(file, fstatSync(file.fd).size, () => {}).next();
  return !first.done && !first.value.complete ? first.value.offset : fstatSync(file.fd).size;
}

/** One file from its end: up to `limit` matching records handed to keep; where its complete lines end. */
function backwards(
  file: StoreFile,
  limit: number,
  keep: (r: StoredRecord) => void,
  take: (file: StoreFile, text: string, offset: number, lineNo: number) => StoredRecord | null,
  complaints: Complaints,
  followed: boolean,
): { count: number; tail: number } {
  if (!file.seekable) {
    // a pipe: forwards, keeping only the last `limit`
    const ring: StoredRecord[] = [];
    const lines = new ForwardLines(
      file,
      0,
      1,
      (text, offset, lineNo) => {
        const r = take(file, text, offset, lineNo);
        if (r && limit > 0) {
          ring.push(r);
          if (ring.length > limit) ring.shift();
        }
      },
      (offset, lineNo) => complaints.long(file, offset, lineNo),
    );
    while (lines.read()) {}
    lines.end((offset, lineNo) => complaints.cut(file, offset, lineNo));
    for (let i = ring.length - 1; i >= 0; i--) keep(ring[i]!);
    return { count: ring.length, tail: 0 };
  }
  const size = fstatSync(file.fd).size;
  let tail = size;
  let count = 0;
  if (limit <= 0 && !followed) return { count, tail };
  for (const line of backwardLines(file, size, (offset) => complaints.long(file, offset, 0))) {
    if (!line.complete) {
      tail = line.offset;
      if (!followed) complaints.cut(file, line.offset, 0);
      continue;
    }
    if (count >= limit) break;
    const r = take(file, line.text, line.offset, 0);
    if (r) {
      keep(r);
      count++;
    }
  }
  return { count, tail };
}
