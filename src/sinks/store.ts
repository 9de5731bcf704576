// --store as a sink: every message's NDJSON object appended to the durable file.
import { Store } from "../store.ts";
import type { Message, Sink } from "./sink.ts";

interface Reporter {
  error(m: string): void;
  info(m: string): void;
}

export class StoreSink implements Sink {
  readonly store: Store;

  constructor(
    path: string,
    private readonly report: Reporter,
    /** An existing store file must be ours and no wider (--mode). */
    maxMode: number,
  ) {
    this.store = new Store(path, (level, message) => report[level](message), maxMode);
  }

  take(m: Message): void {
    if (this.store.admit()) m.writeJson(this.store);
  }

  flush(): void {
    this.store.flush();
  }

  reopen(): void {
    try {
      this.store.reopen();
      this.report.info(`reopened the store ${this.store.path}`);
    } catch (err) {
      this.report.error(`${(err as Error).message}; still writing to the old file`);
    }
  }

  /** Messages printed but not kept, known once closed (the exit status must say so). */
  unkept = 0;

  close(): void {
    this.unkept = this.store.close();
  }
}
