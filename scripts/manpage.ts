// Writes ./postbox.1 from the option definitions (npm run man). test/cli.test.ts fails when it drifts.
import { manPage } from "../src/manpage.ts";
await Bun.write(new URL("../postbox.1", import.meta.url), manPage());
process.stderr.write("wrote postbox.1\n");
