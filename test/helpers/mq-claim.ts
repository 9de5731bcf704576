// mq-claim NAME: claim a queue as its reader (mq_notify SIGEV_NONE, as postbox
// does), say "claimed", and hold the claim until stdin closes.
import { mqClaim, mqOpen, O_NONBLOCK, O_RDONLY } from "../../src/ffi/libc.ts";

const mqd = mqOpen(process.argv[2]!, O_RDONLY | O_NONBLOCK);
mqClaim(mqd);
console.log("claimed");
for await (const _ of Bun.stdin.stream());
