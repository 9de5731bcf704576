// The trap and the mq reader as shared objects built with the system C compiler
// at build time (build.ts), loaded with dlopen from a memfd. cc() (TinyCC) stays
// the route where none was built (running from source, a target without a cross
// compiler) or the object cannot be loaded: the same C source either way.
// Why: TinyCC's compile keeps its compiler's code and state resident in a daemon
// that needs it once (measured: ~1.4 MiB of idle RSS for the two).
import { dlopen, type FFIFunction } from "bun:ffi";
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

/**
 * dlopen the prebuilt object of `name` with `symbols`, or null when there is none
 * or it cannot be loaded (then the caller compiles the source with cc(), by the
 * same route: `tempFallback` as for its source, see source.ts). Its
 * memfd stays open: glibc finds an already loaded object by its path, and a
 * /proc/self/fd/N path would come back for the next object once N is reused.
 */
export function loadPrebuilt<S extends Record<string, FFIFunction>>(name: string, symbols: S, opts: { tempFallback: boolean }, onFail: (why: string) => void) {
  const object = prebuilt(name);
  if (object === null) return null;
  try {
    return withSourcePath(`${name}.so`, object, (path) => dlopen(path, symbols), { tempFallback: opts.tempFallback, keepOpen: true });
  } catch (err) {
    onFail(reason(err));
    return null;
  }
}
