// Loaded before every test file (bunfig.toml): hooks here are global.
import { afterAll } from "bun:test";
import { removeTestQueues } from "./harness.ts";

afterAll(removeTestQueues);
