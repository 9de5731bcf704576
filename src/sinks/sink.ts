// The outputs a postbox routes messages to — stdout, the store, the forwarder —
// are all sinks: each takes the message it is handed and is flushed, reopened
// (SIGHUP) and closed by the postbox in one loop.
import { appendBytes, timestamp, writeJsonLine, type ByteSink, type Sender } from "../format.ts";

/** One message on its way to the sinks. Reused: a sink must not keep it past take(). */
export class Message {
  from!: Sender;
  body!: Uint8Array;
  start = 0;
  end = 0;
  private time: string | undefined;
  /** Where the first sink's NDJSON line of this message is: buf[at, to). */
  private json: Uint8Array | null = null;
  private at = 0;
  private to = 0;

  set(from: Sender, body: Uint8Array, start: number, end: number): this {
    this.from = from;
    this.body = body;
    this.start = start;
    this.end = end;
    this.time = undefined;
    this.json = null;
    return this;
  }

  /** When it arrived (ISO 8601): one for every sink, so `--timestamps` text and the store agree. */
  get ts(): string {
    return (this.time ??= timestamp());
  }

  /**
   * Append the NDJSON line (with its newline) to out. It is made once: a second
   * sink (the store, then stdout) copies the first one's bytes, which stay put
   * until that sink's next append.
   */
  writeJson(out: ByteSink): void {
    if (this.json !== null) return appendBytes(out, this.json.subarray(this.at, this.to));
    this.at = writeJsonLine(out, this.from, this.body, this.start, this.end, this.ts);
    this.json = out.buf; // after the write: making room may have replaced the buffer
    this.to = out.len;
  }
}

export interface Sink {
  take(m: Message): void;
  /** Write out what is buffered. */
  flush(): void;
  /** SIGHUP: reopen what the sink writes to (log rotation). */
  reopen?(): void;
  /** Flush and release; may take a moment (the forwarder finishes sending). */
  close(): void | Promise<void>;
}
