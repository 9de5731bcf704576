// One error type for everything the CLI reports: a one-line message and the exit code.
export const EXIT = { ok: 0, failure: 1, usage: 2, timeout: 3 } as const;

export class PostboxError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = "PostboxError";
  }
}

export class UsageError extends PostboxError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = "UsageError";
  }
}

/** A failed system call: `code` is the errno name (EEXIST, EACCES, …). */
export class SysError extends Error {
  constructor(
    readonly syscall: string,
    readonly code: string,
    readonly errno: number,
    readonly path?: string,
  ) {
    super(`${syscall}${path === undefined ? "" : ` ${path}`}: ${code}`);
    this.name = "SysError";
  }
}

/** The errno name of any error Bun/Node or the ffi shim throws, if it has one. */
export function errnoName(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Short human reason for an errno name, for one-line messages. */
export function reason(err: unknown): string {
  const reasons: Record<string, string> = {
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    ENOENT: "no such file or directory",
    EEXIST: "file exists",
    ENOTDIR: "a path component is not a directory",
    EISDIR: "it is a directory",
    EIO: "input/output error",
    EDQUOT: "disk quota exceeded",
    EADDRINUSE: "address already in use",
    ENAMETOOLONG: "name too long",
    ENOSPC: "no space left on device",
    EMFILE: "too many open files",
    EINVAL: "invalid argument",
    EROFS: "read-only file system",
    ENXIO: "no reader is listening",
    ECONNREFUSED: "connection refused",
    EAGAIN: "resource temporarily unavailable",
    EBUSY: "busy",
    ESRCH: "no such process",
    ENOSYS: "not supported by this system",
    ELOOP: "it is a symlink (not followed)",
  };
  const code = errnoName(err);
  if (code) return reasons[code] ? `${reasons[code]} (${code})` : code;
  return err instanceof Error ? err.message : String(err);
}
