// -f: keep reading a store as it grows and across rotation. Woken by inotify
// (fs.watch on the directory and on our open file), never by a timer: while
// nothing is written, nothing runs.
import { fstatSync, lstatSync, watch, type FSWatcher } from "node:fs";
import { dirname } from "node:path";
import { reason } from "../errors.ts";
import type { ForwardLines, StoreFile } from "./store-reader.ts";

/** Read at most this much per turn, so SIGINT and stdout get their turn while a writer floods us. */
const BUDGET = 8 << 20;

export interface FollowHooks {
  /** Open the file now at path (after rotation): it is read from its start. */
  open(path: string): StoreFile;
  /** A reader of file from start (0 after rotation or truncation). */
  reader(file: StoreFile, start: number, firstLine: number): ForwardLines;
  /** The file we leave ends: report its unfinished last line, if any. */
  retire(lines: ForwardLines): void;
  warn(message: string): void;
}

export class Follower {
  private dirWatcher: FSWatcher | undefined;
  private fileWatcher: FSWatcher | undefined;
  private poll: Timer | undefined;
  private scheduled = false;
  private stopped = false;
  private complained = "";

  constructor(
    private readonly path: string,
    private lines: ForwardLines,
    private readonly hooks: FollowHooks,
  ) {}

  start(): void {
    try {
      this.dirWatcher = watch(dirname(this.path), () => this.wake());
      this.watchFile();
    } catch (err) {
      this.hooks.warn(`cannot watch ${this.path} (${reason(err)}): checking it every second instead`);
      this.poll = setInterval(() => this.wake(), 1000);
    }
    this.wake();
  }

  stop(): void {
    this.stopped = true;
    this.dirWatcher?.close();
    this.fileWatcher?.close();
    clearInterval(this.poll);
    this.lines.file.close();
  }

  /** Our open file itself (its inode, wherever it is renamed to): /proc/self/fd names exactly it. */
  private watchFile(): void {
    this.fileWatcher?.close();
    this.fileWatcher = undefined;
    if (this.poll !== undefined) return;
    this.fileWatcher = watch(`/proc/self/fd/${this.lines.file.fd}`, () => this.wake());
  }

  private wake(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.stopped) this.check();
    });
  }

  private check(): void {
    if (this.lines.read(BUDGET)) return this.wake(); // more is waiting: go on next turn
    const file = this.lines.file;
    if (fstatSync(file.fd).size < this.lines.readAt) {
      this.hooks.warn(`${this.path} shrank (truncated in place?): reading it again from the start`);
      this.lines = this.hooks.reader(file, 0, 1);
      return this.wake();
    }
    this.followRotation();
  }

  /**
   * Another file at the path: ours was rotated away. The writer goes on to the new
   * file only once done with ours, so when the new one holds data, ours is final:
   * read it to its end, then switch. An empty new file (logrotate's `create`, before
   * the writer's SIGHUP) is not a sign yet: the writer may still append to ours.
   */
  private followRotation(): void {
    let now;
    try {
      now = lstatSync(this.path);
    } catch {
      return; // moved away, the new one not created yet: the directory watch wakes us
    }
    const ours = fstatSync(this.lines.file.fd);
    if (now.ino === ours.ino && now.dev === ours.dev) return;
    if (now.isSymbolicLink()) return this.complain(`${this.path} is now a symbolic link: not followed (postbox never follows one)`);
    if (now.size === 0) return;
    while (this.lines.read()) {}
    let next: StoreFile;
    try {
      next = this.hooks.open(this.path);
    } catch (err) {
      return this.complain(`${(err as Error).message}; still waiting for a readable ${this.path}`);
    }
    this.hooks.retire(this.lines);
    this.lines.file.close();
    this.lines = this.hooks.reader(next, 0, 1);
    this.complained = "";
    this.watchFile();
    this.wake();
  }

  /** A warning once per cause, not once per write. */
  private complain(message: string): void {
    if (message !== this.complained) this.hooks.warn(message);
    this.complained = message;
  }
}
