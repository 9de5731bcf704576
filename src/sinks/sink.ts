// The outputs a postbox routes messages to — stdout, the store, the forwarder —
// are all sinks: each takes the message it is handed and is flushed, reopened
// (SIGHUP) and closed by the postbox in one loop.
import { jsonLine, timestamp, type Sender } from "../format.ts";

/** One message on its way to the sinks. Reused: a sink must not keep it past take(). */
export class Message {
  from!: Sender;
  body!: Uint8Array;
  start = 0;
  end = 0;
  private line: string | undefined;
  private time: string | undefined;

  set(from: Sender, body: Uint8Array, start: number, end: number): this {
    this.from = from;
    this.body = body;
    this.start = start;
    this.end = end;
    this.line = undefined;
    this.time = undefined;
    return this;
  }

  /** When it arrived (ISO 8601): one for every sink, so `--timestamps` text and the store agree. */
  get ts(): string {
    return (this.time ??= timestamp());
  }

  /** The NDJSON object (without newline), made once for every sink that wants it. */
  get json(): string {
    return (this.line ??= jsonLine(this.from, this.body.subarray(this.start, this.end), this.ts));
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
