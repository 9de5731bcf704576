// stdout as a sink: the text line of the SPEC or the NDJSON object, batched by Output.
import { writeStamp, writeText } from "../format.ts";
import { Output } from "../output.ts";
import type { Message, Sink } from "./sink.ts";

export class StdoutSink implements Sink {
  /** Exposed for the postbox's fast plain-text path, which writes lines straight into it. */
  readonly out: Output;

  /** `before` runs ahead of every write to stdout (the store is written first). */
  constructor(
    private readonly json: boolean,
    /** --timestamps: text lines start with the message's ts. */
    private readonly timestamps: boolean,
    onClosed: (err: unknown) => void,
    before?: () => void,
  ) {
    this.out = new Output(1, onClosed, before);
  }

  take(m: Message): void {
    if (this.json) m.writeJson(this.out);
    else {
      if (this.timestamps) writeStamp(this.out, m.ts);
      writeText(this.out, m.from, m.body, m.start, m.end);
    }
    this.out.commit();
  }

  flush(): void {
    this.out.flush();
  }

  close(): void {
    this.out.flush();
  }
}
