// The trap and the mq reader as shared objects built with the system C compiler
// at build time (build.ts), loaded with dlopen from a memfd. cc() (TinyCC) stays
// the route where none was built (running from source, a target without a cross
// compiler) or the object cannot be loaded: the same C source either way.
// Why: TinyCC's compile keeps its compiler's code and state resident in a daemon
// that needs it once (measured: ~1.4 MiB of idle RSS for the two).
import { cc, dlopen, type FFIFunction, type Library } from "bun:ffi";
import { reason } from "../errors.ts";
import { withSourcePath } from "./source.ts";

declare const POSTBOX_NATIVE: Record<string, string> | undefined;

/** The C compiler's flags: no libc, no headers, no calls gcc would add (memcpy, memset), unoptimised as TinyCC compiles. */
export const NATIVE_CFLAGS = ["-shared", "-fPIC", "-O0", "-nostdlib", "-ffreestanding", "-fno-builtin", "-Wl,-z,defs", "-Wl,-Bsymbolic", "-Wl,-z,noexecstack"];

/** The prebuilt object of `name` ("postbox-siginfo"), if the build made one. */
function prebuilt(name: string): Uint8Array | null {
  const b64 = typeof POSTBOX_NATIVE === "undefined" ? undefined : POSTBOX_NATIVE[name];
  return b64 === undefined ? null : Buffer.from(b64, "base64");
}

/** A cc() failure, its lines joined into one, and why the prebuilt object was not used if there was one. */
export class CompileError extends Error {}

/**
 * `name`'s library: its prebuilt object when the build made one and it loads,
 * else `source` compiled with cc() (-nostdlib: it links nothing, so no libc.so
 * link script is needed on the target). Both go in by path the same way (see
 * source.ts: `tempFallback`). The memfd of a prebuilt object stays open: glibc
 * finds an already loaded object by its path, and a /proc/self/fd/N path would
 * come back for the next object once N is reused.
 */
export function nativeLib<S extends Record<string, FFIFunction>>(name: string, what: string, source: string, symbols: S, opts: { tempFallback: boolean }): Library<S> {
  let unloaded = "";
  const object = prebuilt(name);
  if (object !== null) {
    try {
      return withSourcePath(`${name}.so`, object, (path) => dlopen(path, symbols), { tempFallback: opts.tempFallback, keepOpen: true });
    } catch (err) {
      unloaded = reason(err);
    }
  }
  return withSourcePath(
    `${name}.c`,
    source,
    (path) => {
      try {
        return cc({ source: path, symbols, flags: ["-nostdlib"] });
      } catch (err) {
        const lines = (err instanceof Error ? err.message : String(err)).split("\n").map((l) => l.trim());
        throw new CompileError(`${lines.filter(Boolean).join(": ")}${unloaded === "" ? "" : ` (nor could the prebuilt ${what} be loaded: ${unloaded})`}`);
      }
    },
    opts,
  );
}
