// The end of start-up: what the binary needed only to start is let go.

/**
 * The binary starts with the JIT held back (build.ts: jitPolicy), so that code run
 * once while starting is interpreted, not compiled (less work, less memory); the
 * command's own work runs under the normal policy from here on.
 */
export function normalJit(): void {
  Bun.unsafe.setJITPolicy(1);
}
