// mq-unlink NAME: remove a message queue (bash has no tool for it).
import { mqRemove } from "./mq.ts";

for (const name of process.argv.slice(2)) mqRemove(name);
