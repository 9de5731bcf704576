// Unix stream socket channel (path and/or abstract name). Sender identity comes
// from SO_PEERCRED, read once when the connection is accepted.
import { readFileSync } from "node:fs";
import type { Socket } from "bun";
import { claimSocket, listenClaimed, peerMayPost, releaseSocket } from "../endpoint.ts";
import { PostboxError, reason } from "../errors.ts";
import { closeFd, peerCred, peersFinished, recvNow, unixSocketName, type PeerCred } from "../ffi/libc.ts";
import { socketSender, type Sender } from "../format.ts";
import { LineFramer } from "../framing.ts";
import type { ChannelContext, ChannelHandle } from "../types.ts";
import { openFds, openFileLimit, PausableListener } from "./listener.ts";
import { debugging, log } from "../log.ts";

export interface SocketOptions {
  mode: number;
  maxMessage: number;
  maxConnections: number;
  idleTimeout: number;
  linger: number;
  /** Look up the sender's command name (shown in --json only). */
  withComm: boolean;
}

class Conn {
  /** Made at the first data that does not end the connection (most clients never need one). */
  framer: LineFramer | null = null;
  /** performance.now() of the last data. */
  last = 0;
  halfClosed = false;
  closed = false;
  constructor(readonly sender: Sender) {}
}

type Client = Socket<Conn | undefined>;

/** How long a refused client may take to read why before it is cut off. */
const REFUSED_GRACE_MS = 1000;

/** Clients that may wait for a slot, as a multiple of --max-connections. */
const WAIT_FACTOR = 64;

/** Connections shared by every listener of one postbox (one --max-connections budget). */
export class SocketHub {
  private readonly conns = new Set<Client>();
  private readonly lingering = new Set<Client>();
  private lingerTimer: Timer | undefined;
  private idleTimer: Timer | undefined;
  private refused = 0;
  private refusedTimer: Timer | undefined;
  /** Accepted past --max-connections this turn, not sorted out yet (see sortOut). */
  private readonly unsure: Client[] = [];
  /** Accepted past --max-connections, not read yet (the kernel holds what they sent). */
  private readonly waiting = new Set<Client>();
  private waitWarned = -Infinity;
  private modeWarned = -Infinity;
  /** Soft RLIMIT_NOFILE: past it accept(2) fails (EMFILE) until an fd frees. */
  private readonly fdLimit = openFileLimit();
  private readonly fdWatchFrom = this.fdLimit - FD_WATCH;
  private fdWarned = -Infinity;
  /** Accepted sockets not closed yet, whatever their state. */
  private sockets = 0;
  /**
   * Counting open fds takes syscalls (see openFds): after a count, `sockets`
   * tells when the next one is due — each socket takes one fd, and what
   * postbox opens itself fits in FD_SPARE.
   */
  private fdCountAt = 0;
  /** While paused: count again once `sockets` is down to this. */
  private fdRecountAt = 0;
  private readonly listeners = new Set<PausableListener<Conn | undefined>>();
  /** The listeners are paused for want of fds. */
  private fdPaused = false;
  /** closeAll() ran: paused listeners stay paused until they close. */
  private closing = false;
  /**
   * For our own reads: clients as they are accepted, what one that is ahead of us
   * has queued (drainNow), held ones at close. The framer copies what it keeps.
   */
  private readBuf: Uint8Array | undefined;
  /** The framer of clients served at once, and whose lines it is framing. */
  private oneShot: LineFramer | undefined;
  private current: Sender | undefined;
  /** Served at once, to be closed once their lines are written (see closeServed). */
  private readonly served: Client[] = [];

  constructor(
    private readonly opts: SocketOptions,
    private readonly ctx: ChannelContext,
  ) {}

  /**
   * Claim a path ("./socket") or an abstract name ("@name") now: bound with its
   * mode, so it is ours; it listens (becomes reachable) only at ready().
   */
  async listen(address: string): Promise<ChannelHandle> {
    this.checkFdHeadroom(address);
    const claim = await claimSocket(address, this.opts.mode);
    const where = address.startsWith("@") ? `echo 2 | socat - ABSTRACT-CONNECT:${address.slice(1)}` : `echo 2 | nc -U ${address}`;
    let served: ChannelHandle | undefined;
    let open = true;
    return {
      kind: "socket",
      where,
      ready: () => {
        listenClaimed(claim); // clients may connect from now on: they wait in the backlog
        return () => {
          let listener: PausableListener<Conn | undefined>;
          try {
            listener = PausableListener.adopt(claim.fd, this.handlers(address));
          } catch (err) {
            throw new PostboxError(`cannot listen on ${address}: ${reason(err)}`);
          }
          const abstract = address.startsWith("@");
          log.debug(`socket ${address}: listening${abstract ? "" : `, mode 0${this.opts.mode.toString(8)}`}, ${this.opts.maxConnections} clients at once, linger ${this.opts.linger} ms, idle timeout ${this.opts.idleTimeout} s`);
          served = this.serve(listener, where);
        };
      },
      close: () => {
        if (!open) return;
        open = false;
        if (served) served.close();
        else closeFd(claim.fd);
        releaseSocket(claim); // the file only if it still is the one we bound
      },
    };
  }

  /** The channel handle of a listener (its close() closes the fd; files are the endpoint module's). */
  private serve(listener: PausableListener<Conn | undefined>, where: string): ChannelHandle {
    this.listeners.add(listener);
    return {
      kind: "socket",
      where,
      close: () => {
        this.listeners.delete(listener);
        listener.close();
      },
    };
  }

  /** A listening socket passed by systemd (ListenStream=): serve it, never unlink anything. */
  adopt(fd: number, name: string): ChannelHandle {
    let bound = "";
    try {
      bound = unixSocketName(fd);
    } catch {
      // unnamed: the banner and the via field fall back to the fd name
    }
    this.checkFdHeadroom(bound || name);
    let listener: PausableListener<Conn | undefined>;
    try {
      listener = PausableListener.adopt(fd, this.handlers(bound || name));
    } catch (err) {
      throw new PostboxError(`cannot listen on the passed socket ${name}: ${reason(err)}`);
    }
    return this.serve(
      listener,
      bound.startsWith("@")
        ? `echo 2 | socat - ABSTRACT-CONNECT:${bound.slice(1)}`
        : `echo 2 | nc -U ${bound || `<the socket passed as ${name}>`}`,
    );
  }

  private handlers(via: string) {
    // Senders by pid for this listener: a client that connects again (or a burst
    // from one process) reuses its prefix instead of formatting it per connection.
    const senders = new Map<number, Sender>();
    return {
      open: (s: Client) => this.open(s, via, senders),
      data: (s: Client, chunk: Uint8Array) => this.data(s, chunk),
      // Plain Uint8Arrays, like every other chunk the framer and the writers see
      // (ours, the FIFO's, the mq reader's): one typed-array shape keeps the
      // JIT-compiled writers from deoptimizing when a Buffer comes along.
      binaryType: "uint8array" as const,
      // No end handler: on EOF Bun closes the connection itself (one syscall
      // fewer than end() there), and close delivers the last line.
      close: (s: Client) => {
        this.sockets--;
        this.finish(s);
        if (this.fdPaused && this.sockets <= this.fdRecountAt) this.fdsFreed();
      },
      error: (s: Client) => this.finish(s),
    };
  }

  /** Deliver every connection's unfinished line and drop the connections. */
  closeAll(): void {
    this.closing = true;
    this.closeServed();
    // Clients still waiting for a slot were never read: what they sent is in the kernel.
    for (const s of [...this.unsure, ...this.waiting]) this.drainHeld(s);
    for (const s of [...this.unsure, ...this.waiting, ...this.conns]) {
      this.finish(s);
      s.terminate();
    }
    clearTimeout(this.lingerTimer);
    clearTimeout(this.idleTimer);
    clearTimeout(this.refusedTimer);
    this.flushRefused();
  }

  // The hot path of a connect-post-close burst: everything rare is in its own method.
  private open(s: Client, via: string, senders: Map<number, Sender>): void {
    const fd = fdOf(s);
    if ((++this.sockets >= this.fdWatchFrom || fd >= this.fdWatchFrom) && this.sockets >= this.fdCountAt) this.nearFdLimit();
    if (this.conns.size + this.waiting.size + this.unsure.length >= WAIT_FACTOR * this.opts.maxConnections) return this.overflow(s);
    const sender = this.sender(s, fd, via, senders);
    if (!sender) return;
    const c = (s.data = new Conn(sender));
    if (debugging) log.debug(`${sender.prefix.slice(0, -2)} connected`);
    if (this.conns.size < this.opts.maxConnections) return this.readAtOnce(s, fd, c);
    this.unsure.push(s);
    if (this.unsure.length === 1) setImmediate(() => this.sortOut());
  }

  /**
   * Past --max-connections, a client that has already sent everything and hung
   * up is served at once: what it sent is in the kernel, and it leaves in the
   * same turn. Connect-post-close bursts are mostly such clients, accepted by the
   * thousand in one turn: one poll(2) tells for all of them. The others wait.
   */
  private sortOut(): void {
    // Gone already, or let in by sending before we got here (data() admits it).
    const batch = this.unsure.splice(0).filter((s) => s.data && !s.data.closed && !this.conns.has(s));
    let finished: boolean[];
    try {
      finished = peersFinished(batch.map(fdOf));
    } catch {
      finished = batch.map(() => false); // cannot tell: they wait like any other
    }
    batch.forEach((s, i) => (finished[i] ? this.admitted(s) : this.hold(s)));
  }

  /** Who is connecting (SO_PEERCRED), or undefined when the client was turned away. */
  private sender(s: Client, fd: number, via: string, senders: Map<number, Sender>): Sender | undefined {
    let cred: PeerCred;
    try {
      cred = peerCred(fd);
    } catch (err) {
      this.ctx.warn(`socket ${via}: cannot read the sender's credentials (${reason(err)}); connection closed`);
      s.terminate();
      return undefined;
    }
    if (via.startsWith("@") && !peerMayPost(this.opts.mode, cred)) return this.modeRefused(s, via, cred);
    if (this.ctx.restricted && !this.allowed(s, cred)) return undefined;
    // --json/--store show the command name, which may change at exec: look it up each time.
    if (this.opts.withComm) return socketSender(via, cred.pid, cred.uid, cred.gid, comm(cred.pid));
    const known = senders.get(cred.pid);
    if (known && known.fields.uid === cred.uid && known.fields.gid === cred.gid) return known;
    if (senders.size >= 1024) senders.clear();
    const sender = socketSender(via, cred.pid, cred.uid, cred.gid);
    senders.set(cred.pid, sender);
    return sender;
  }

  private allowed(s: Client, cred: PeerCred): boolean {
    if (this.ctx.allows(cred.uid, () => cred.gid, () => `socket client pid ${cred.pid} (uid ${cred.uid}, gid ${cred.gid})`)) return true;
    this.turnAway(s, `uid ${cred.uid} may not post here`);
    return false;
  }

  /** An abstract socket has no file mode: --mode is applied to the peer (see peerMayPost). */
  private modeRefused(s: Client, via: string, cred: PeerCred): undefined {
    const mode = this.opts.mode.toString(8).padStart(4, "0");
    const now = performance.now();
    if (now - this.modeWarned > 1000) {
      this.modeWarned = now; // at most once a second: a refused flood cannot flood stderr
      this.ctx.warn(`socket ${via}: refused pid ${cred.pid} (uid ${cred.uid}, gid ${cred.gid}): --mode ${mode} does not let it post`);
    }
    return this.turnAway(s, `uid ${cred.uid} may not post here (--mode ${mode})`);
  }

  private turnAway(s: Client, why: string): undefined {
    // The only thing postbox ever writes to a client: why it is turned away (nc prints it).
    // Half-close, not close: closing with the client's bytes unread would reset the
    // connection before it can read the answer. What it sends is read and dropped.
    s.write(`postbox: refused: ${why}\n`);
    s.shutdown();
    setTimeout(() => s.terminate(), REFUSED_GRACE_MS).unref();
    return undefined;
  }

  /** A framer delivering as `who()`: a connection's sender, or `current` for the one shared by clients served at once. */
  private framer(who: () => Sender): LineFramer {
    const { ctx, opts } = this;
    return new LineFramer(
      opts.maxMessage,
      (buf, start, end) => ctx.deliver(who(), buf, start, end),
      () => ctx.warn(`${who().prefix.slice(0, -2)} sent a line longer than ${opts.maxMessage} bytes; delivered in pieces`),
      ctx.deliverLines && ((buf, start, stop) => ctx.deliverLines!(who(), buf, start, stop, opts.maxMessage)),
    );
  }

  /** A connection's own framer, made when it is first needed. */
  private framerOf(c: Conn): LineFramer {
    return (c.framer ??= this.framer(() => c.sender));
  }

  /** The one buffer of our own reads. */
  private readBuffer(): Uint8Array {
    return (this.readBuf ??= new Uint8Array(READ_BUF));
  }

  /** Past WAIT_FACTOR times --max-connections: refuse. */
  private overflow(s: Client): void {
    this.refuse(1);
    s.terminate();
  }

  /**
   * A burst of connect-post-close clients is accepted before any of them is
   * read. Past --max-connections a client waits paused, its bytes in the kernel
   * and not in our memory, until a slot frees.
   */
  private hold(s: Client): void {
    s.pause();
    this.waiting.add(s);
    const now = performance.now();
    if (now - this.waitWarned > 1000) {
      this.waitWarned = now;
      this.ctx.warn(`--max-connections ${this.opts.maxConnections} reached: new clients wait for a free slot`);
    }
  }

  private admitted(s: Client): void {
    s.data!.last = performance.now();
    this.conns.add(s);
    if (this.opts.idleTimeout > 0) this.idleTimer ??= setTimeout(() => this.closeIdle(), this.opts.idleTimeout * 1000);
  }

  /**
   * conns is kept in order of last activity (data moves a client to the end),
   * so the idle ones are at the front and one timer serves them all.
   */
  private closeIdle(): void {
    this.idleTimer = undefined;
    const limit = this.opts.idleTimeout * 1000;
    const now = performance.now();
    for (const s of this.conns) {
      const due = s.data!.last + limit;
      if (due > now) {
        this.idleTimer = setTimeout(() => this.closeIdle(), due - now + 1);
        return;
      }
      this.ctx.warn(`${s.data!.sender.prefix.slice(0, -2)} idle for ${this.opts.idleTimeout} s; connection closed`);
      this.finish(s);
      s.end();
    }
  }

  /** Refuse to start where the open-file limit leaves no room for clients (they would all hang). */
  private checkFdHeadroom(address: string): void {
    const used = openFds(this.fdLimit);
    if (used === null || this.fdLimit - used >= FD_MIN_FREE) return;
    throw new PostboxError(
      `cannot serve ${address}: the open-file limit (ulimit -n ${this.fdLimit}) is too low: ${used} descriptors are in use before any client; raise it to at least ${used + FD_MIN_FREE}`,
    );
  }

  /**
   * At the open-file limit accept(2) fails and Bun retries it at once, forever:
   * stop watching the listeners while FD_SPARE or fewer fds are free (clients
   * wait in the kernel's queue) and say so, at most once a second.
   */
  private nearFdLimit(): void {
    if (this.fdPaused) return;
    this.closeServed(); // their fds first
    const free = this.fdLimit - (openFds(this.fdLimit, this.sockets) ?? this.fdLimit);
    if (free > FD_SPARE) {
      this.fdCountAt = this.sockets + free - FD_SPARE;
      return;
    }
    this.fdRecountAt = Math.max(0, this.sockets - (2 * FD_SPARE + 1 - free));
    try {
      for (const l of this.listeners) l.pause();
    } catch (err) {
      this.ctx.warn(`at the open-file limit (ulimit -n ${this.fdLimit}) and cannot pause the listener: ${reason(err)}`);
    }
    this.fdPaused = true;
    const now = performance.now();
    if (now - this.fdWarned < 1000) return;
    this.fdWarned = now;
    this.ctx.warn(`${this.sockets} clients open, near the open-file limit (ulimit -n ${this.fdLimit}): new clients wait until one leaves`);
  }

  /** A client left while paused: watch the listeners again once there is room. */
  private fdsFreed(): void {
    if (this.closing) return;
    const free = this.fdLimit - (openFds(this.fdLimit, this.sockets) ?? this.fdLimit);
    if (free <= 2 * FD_SPARE) {
      this.fdRecountAt = Math.max(0, this.sockets - (2 * FD_SPARE + 1 - free));
      return;
    }
    this.fdCountAt = this.sockets + free - FD_SPARE;
    this.fdPaused = false;
    for (const l of this.listeners) l.resume();
  }

  /** Read what a paused client left in the kernel (its fd is non-blocking), up to EOF or EAGAIN. */
  private drainHeld(s: Client): void {
    const c = s.data;
    if (!c || c.closed) return;
    try {
      this.readQueued(fdOf(s), this.framerOf(c), Infinity);
    } catch (err) {
      this.ctx.warn(`${c.sender.prefix.slice(0, -2)}: cannot read what it sent (${reason(err)})`);
    }
  }

  /** A slot is free: let the longest-waiting client in. */
  private admit(): void {
    for (const s of this.waiting) {
      if (this.conns.size >= this.opts.maxConnections) return;
      this.waiting.delete(s);
      this.admitted(s);
      s.resume();
    }
  }

  /**
   * A burst of connect-post-close clients is accepted whole before any of them
   * is read, and most have sent everything and hung up by then: read a client
   * as it is accepted and, if it is done, serve and close it in the same turn
   * (no framer, no timers, no place in conns) rather than hold thousands of
   * sockets open until the loop gets round to them. Bun reads a socket only
   * when the loop finds it readable (no read-ahead), so the order is kept;
   * what is still to come, Bun reads as usual.
   */
  private readAtOnce(s: Client, fd: number, c: Conn): void {
    const buf = this.readBuffer();
    let n = -1;
    let eof = false;
    try {
      n = recvNow(fd, buf, 0);
      if (n > 0 && n < buf.byteLength) {
        const more = recvNow(fd, buf, n);
        if (more > 0) n += more;
        else eof = more === 0;
      } else eof = n === 0;
    } catch {
      // Bun's own read meets the error and closes
    }
    if (eof) {
      c.closed = true;
      if (n > 0) {
        this.current = c.sender;
        const framer = (this.oneShot ??= this.framer(() => this.current!));
        framer.push(buf.subarray(0, n));
        framer.flush();
      }
      if (debugging) log.debug(`${c.sender.prefix.slice(0, -2)} closed`);
      this.served.push(s);
      if (this.served.length >= SERVED_BATCH) this.closeServed();
      else if (this.served.length === 1) setImmediate(() => this.closeServed());
      return;
    }
    this.admitted(s);
    if (n > 0) this.data(s, buf.subarray(0, n));
  }

  /**
   * Close the clients served at once, after writing out their lines: a client
   * that sees its connection end may count on them being out (`echo 2 | nc -N
   * -U socket && kill -9 <postbox>` loses nothing). One write for a batch.
   */
  private closeServed(): void {
    if (this.served.length === 0) return;
    this.ctx.flush();
    for (const s of this.served) closeGently(s);
    this.served.length = 0;
  }

  private data(s: Client, chunk: Uint8Array): void {
    const c = s.data;
    if (!c || c.closed) return;
    const framer = this.framerOf(c);
    framer.push(chunk);
    if (chunk.byteLength >= DRAIN_FROM) this.drainNow(s, framer);
    c.last = performance.now();
    this.conns.delete(s); // keep conns in order of activity (see closeIdle)
    this.conns.add(s);
    if (this.opts.linger > 0 && !c.halfClosed) {
      this.lingering.add(s);
      this.lingerTimer ??= setTimeout(() => this.sweep(), this.opts.linger);
    }
  }

  /**
   * A big chunk means the client is ahead of us and more is likely queued: read
   * it now into one reused buffer, where Bun would hand a fresh buffer per read
   * (page faults and allocation for every chunk). Bun reads a socket only when the
   * loop finds it readable and calls data() from that read, so reading here, after
   * its chunk, keeps the order. Bounded per call so one client cannot starve the rest.
   */
  private drainNow(s: Client, framer: LineFramer): void {
    try {
      this.readQueued(fdOf(s), framer, DRAIN_READS);
    } catch {
      // Bun's own read meets the error and closes
    }
  }

  /** Up to `reads` reads of what fd holds now, into framer; stops at EAGAIN or EOF (which Bun's own read then sees). */
  private readQueued(fd: number, framer: LineFramer, reads: number): void {
    const buf = this.readBuffer();
    for (let k = 0, n; k < reads && (n = recvNow(fd, buf, 0)) > 0; k++) framer.push(buf.subarray(0, n));
  }

  /**
   * `echo 2 | nc -U socket` never half-closes: once a client has been quiet for
   * --linger ms, deliver what it sent and half-close so it sees EOF and exits.
   * We keep reading until its EOF in case it still has something to say.
   */
  private sweep(): void {
    this.lingerTimer = undefined;
    const now = performance.now();
    let next = Infinity;
    for (const s of this.lingering) {
      const c = s.data;
      const due = c ? c.last + this.opts.linger : 0;
      if (c && !c.closed && due > now) {
        next = Math.min(next, due);
        continue;
      }
      this.lingering.delete(s);
      if (!c || c.closed) continue;
      c.framer?.flush();
      c.halfClosed = true;
      s.shutdown();
    }
    if (next !== Infinity) this.lingerTimer = setTimeout(() => this.sweep(), Math.max(1, next - now));
  }

  /** The connection is done (EOF, idle timeout, error, close): deliver its last line once. */
  private finish(s: Client): void {
    const c = s.data;
    if (!c || c.closed) return;
    c.closed = true;
    c.framer?.flush();
    if (debugging) log.debug(`${c.sender.prefix.slice(0, -2)} closed`);
    this.lingering.delete(s);
    this.waiting.delete(s);
    if (this.conns.delete(s) && this.waiting.size > 0) this.admit();
  }

  /** At --max-connections: warn at once, then at most once a second with the count. */
  private refuse(n: number): void {
    if (this.refusedTimer) {
      this.refused += n;
      return;
    }
    this.ctx.warn(`--max-connections ${this.opts.maxConnections} reached: refused ${n} connection(s)`);
    this.refusedTimer = setTimeout(() => this.flushRefused(), 1000);
  }

  private flushRefused(): void {
    this.refusedTimer = undefined;
    if (this.refused === 0) return;
    this.ctx.warn(`--max-connections ${this.opts.maxConnections} reached: refused ${this.refused} more connection(s)`);
    this.refused = 0;
  }
}

/** A chunk this big says the client is ahead of us (smaller ones mostly leave nothing queued: no read is wasted on them). */
const DRAIN_FROM = 32 << 10;
/** More than a socket's default receive buffer (~208 KiB): one read takes what is queued. */
const READ_BUF = 256 << 10;
/** Reads per callback: up to 4 MiB from one client before the loop serves the others. */
const DRAIN_READS = 16;
/** Clients served at once that may wait for one write before they are closed (fds held meanwhile). */
const SERVED_BATCH = 256;
/** Free fds kept for what postbox opens itself (a /proc read, the store on SIGHUP, the listener's dup). */
const FD_SPARE = 8;
/** Free fds needed at start to serve at all: the spare ones and a few clients. */
const FD_MIN_FREE = 2 * FD_SPARE + 8;
/** Count open fds exactly (readdir /proc/self/fd) only this close to the limit. */
const FD_WATCH = 64;

/** Bun's sockets have a working fd, missing from the typings. */
function fdOf(s: Client): number {
  return (s as unknown as { fd: number }).fd;
}

/**
 * Close as Bun does at EOF (epoll_ctl DEL, close): terminate() adds an SO_LINGER
 * syscall and end() a TCP_CORK one. Bun's close() is missing from the typings.
 */
function closeGently(s: Client): void {
  (s as unknown as { close(): void }).close();
}

function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trimEnd();
  } catch {
    return undefined; // the sender already exited
  }
}
