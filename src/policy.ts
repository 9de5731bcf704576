// Who may post: --allow-uid/--allow-gid allow lists, and --rate per sender uid.
import { readFileSync } from "node:fs";

export interface PolicyOptions {
  /** null = everyone. */
  allowUids: ReadonlySet<number> | null;
  allowGids: ReadonlySet<number> | null;
  /** Messages per second per uid, or null for no limit. */
  rate: number | null;
}

/** Key of unknown senders (a uid is never negative): refusals and --rate count them together. */
export const UNKNOWN = -1;

interface Bucket {
  tokens: number;
  at: number;
  suppressed: number;
}

/** At most one warning a second per uid; the rest are counted into the next one. */
interface Refusals {
  shown: number;
  more: number;
}

export class Policy {
  private readonly buckets = new Map<number, Bucket>();
  private readonly refusals = new Map<number, Refusals>();
  private reportTimer: Timer | undefined;

  constructor(
    private readonly opts: PolicyOptions,
    private readonly warn: (message: string) => void,
  ) {}

  get restricted(): boolean {
    return this.opts.allowUids !== null || this.opts.allowGids !== null;
  }

  /**
   * A sender is allowed when its uid or (if known) its gid is on a list; a refusal
   * is warned about. uid null: the sender is unknown, and no list lets it in.
   */
  allows(uid: number | null, gid: () => number | undefined, who: () => string): boolean {
    if (!this.restricted) return true;
    if (uid === null) return this.refuse(UNKNOWN, who, "a sender the kernel did not record passes no list");
    if (this.opts.allowUids?.has(uid)) return true;
    if (this.opts.allowGids !== null) {
      const g = gid();
      if (g !== undefined && this.opts.allowGids.has(g)) return true;
    }
    return this.refuse(uid, who, "not on --allow-uid/--allow-gid");
  }

  private refuse(uid: number, who: () => string, why: string): false {
    const now = performance.now();
    const r = this.refusals.get(uid);
    if (r && now - r.shown < 1000) {
      r.more++;
      this.reportTimer ??= setTimeout(() => this.report(), 1000);
    } else {
      this.refusals.set(uid, { shown: now, more: 0 });
      this.warn(`refused ${who()}: ${why}`);
    }
    return false;
  }

  /** Token bucket per uid: true when this message may pass. Drops are reported once a second. */
  take(uid: number): boolean {
    const rate = this.opts.rate;
    if (rate === null) return true;
    const now = performance.now();
    let b = this.buckets.get(uid);
    if (!b) this.buckets.set(uid, (b = { tokens: rate, at: now, suppressed: 0 }));
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    b.suppressed++;
    this.reportTimer ??= setTimeout(() => this.report(), 1000);
    return false;
  }

  close(): void {
    clearTimeout(this.reportTimer);
    this.report();
  }

  private report(): void {
    this.reportTimer = undefined;
    for (const [uid, r] of this.refusals) {
      const from = uid === UNKNOWN ? "unknown senders" : `uid ${uid}`;
      if (r.more > 0) this.warn(`refused ${r.more} more message(s)/connection(s) from ${from}: not on --allow-uid/--allow-gid`);
      this.refusals.delete(uid);
    }
    for (const [uid, b] of this.buckets) {
      if (b.suppressed > 0) this.warn(`--rate ${this.opts.rate}/s: suppressed ${b.suppressed} message(s) from uid ${uid}`);
      b.suppressed = 0;
      if (b.tokens >= (this.opts.rate ?? 0)) this.buckets.delete(uid); // full again: forget it (bounded memory)
    }
  }
}

/** The real gid of a live process (signals carry no gid), or undefined when it is gone. */
export function processGid(pid: number): number | undefined {
  try {
    const m = /^Gid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** "0,1000,alice" → uids, resolving names through /etc/passwd (or /etc/group for gids). */
export function parseIdList(list: string, db: "/etc/passwd" | "/etc/group"): Set<number> {
  const ids = new Set<number>();
  let table: Map<string, number> | undefined;
  for (const item of list.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (/^\d+$/.test(item)) {
      ids.add(Number(item));
      continue;
    }
    table ??= readIdTable(db);
    const id = table.get(item);
    if (id === undefined) throw new Error(`unknown ${db === "/etc/passwd" ? "user" : "group"} ${JSON.stringify(item)}`);
    ids.add(id);
  }
  if (ids.size === 0) throw new Error("empty list");
  return ids;
}

function readIdTable(db: string): Map<string, number> {
  const table = new Map<string, number>();
  try {
    for (const line of readFileSync(db, "utf8").split("\n")) {
      const f = line.split(":");
      if (f.length >= 3 && /^\d+$/.test(f[2]!)) table.set(f[0]!, Number(f[2]));
    }
  } catch {
    // no database: only numeric ids work
  }
  return table;
}
