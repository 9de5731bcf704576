// Where the Worker entrypoints are. Resolved from this file's directory (src/):
// in the compiled binary that is the bundle's root, where build.ts puts each
// worker as an entrypoint of its own; from source it is src/ itself. An absolute
// URL, never a bare relative path (Bun would look for that in the working directory).
export const DGRAM_READER = new URL("./channels/dgram-reader.ts", import.meta.url);
export const FORWARDER = new URL("./sinks/forward-worker.ts", import.meta.url);
