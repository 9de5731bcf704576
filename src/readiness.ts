// Telling systemd that the postbox is ready (and when it stops): sd_notify
// READY=1 / STOPPING=1 when NOTIFY_SOCKET is set. The pidfile is the endpoint module's.
import { reason } from "./errors.ts";
import { DatagramSender } from "./ffi/dgram.ts";

/** sd_notify(3): a no-op unless systemd (or a test) set NOTIFY_SOCKET. Returns an error text, or null. */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const address = env.NOTIFY_SOCKET;
  if (!address) return null;
  try {
    const sender = new DatagramSender(address);
    try {
      sender.send(Buffer.from(state));
    } finally {
      sender.close();
    }
    return null;
  } catch (err) {
    return `cannot notify systemd at ${address}: ${reason(err)}`;
  }
}
