// -f: keep reading a store as it grows and across rotation. Woken by inotify
// (the directory, and our open file wherever it is renamed to), never by a timer:
// while nothing is written, nothing runs. Bun's fs.watch was tried first: it lost
// the event of a write now and then (measured: a line left unread until the next).
import { closeSync, fstatSync, lstatSync } from "node:fs";
import { dirname } from "node:path";
import { readFd, type FdReader } from "../channels/reader.ts";
import { reason } from "../errors.ts";
import { IN, inotifyInit, inotifyUnwatch, inotifyWatch } from "../ffi/libc.ts";
import type { ForwardLines, StoreFile } from "./store-reader.ts";

const DIR_EVENTS = IN.CREATE | IN.MOVED_TO | IN.MOVED_FROM | IN.DELETE | IN.MODIFY | IN.ATTRIB;
const FILE_EVENTS = IN.MODIFY | IN.ATTRIB | IN.CLOSE_WRITE | IN.MOVE_SELF | IN.DELETE_SELF;

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
  private inotify = -1;
  private events: FdReader | undefined;
  private fileWatch = -1;
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
      this.inotify = inotifyInit();
      inotifyWatch(this.inotify, dirname(this.path), DIR_EVENTS);
      this.watchFile();
      // what the events say does not matter: each batch means "look again"
      this.events = readFd(this.inotify, () => this.wake(), (err) => this.fallBack(err));
    } catch (err) {
      this.fallBack(err);
    }
    this.wake();
  }

  stop(): void {
    this.stopped = true;
    this.events?.stop();
    if (this.inotify >= 0) closeSync(this.inotify);
    this.inotify = -1;
    clearInterval(this.poll);
    this.lines.file.close();
  }

  /** No inotify (out of watches or instances): still follow, by looking once a second. */
  private fallBack(err: unknown): void {
    if (this.poll !== undefined || this.stopped) return;
    this.hooks.warn(`cannot watch ${this.path} (${reason(err)}): checking it every second instead`);
    this.poll = setInterval(() => this.wake(), 1000);
  }

  /** Our open file itself (its inode, wherever it is renamed to): /proc/self/fd names exactly it. */
  private watchFile(): void {
    if (this.inotify < 0) return;
    if (this.fileWatch >= 0) inotifyUnwatch(this.inotify, this.fileWatch);
    this.fileWatch = inotifyWatch(this.inotify, `/proc/self/fd/${this.lines.file.fd}`, FILE_EVENTS);
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
    try {
      this.watchFile();
    } catch (err) {
      this.fallBack(err);
    }
    this.wake();
  }

  /** A warning once per cause, not once per write. */
  private complain(message: string): void {
    if (message !== this.complained) this.hooks.warn(message);
    this.complained = message;
  }
}
