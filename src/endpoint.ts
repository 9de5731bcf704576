// The endpoint module: the one place that claims and releases paths and names.
// No symlink is followed; owner and mode are checked on the opened object; only
// what we created is removed; one postbox at a time claims a directory's paths.
// Every channel asks it; none re-implements it.
export { DirLocks } from "./endpoint/lock.ts";
export { openOwnedFile, ownedOrClosed, randomHex } from "./endpoint/object.ts";
export { claimFifo, fifoServed, openClaimedFifo, openFifoForWriting, releaseFifo, type FifoState } from "./endpoint/fifo.ts";
export { claimSocket, listenClaimed, peerMayPost, probeSocket, releaseSocket } from "./endpoint/socket.ts";
export { claimDgram, openDgramGate, releaseDgram, type DgramClaim } from "./endpoint/dgram.ts";
export { preparePidfile, removePidfile, type Pidfile } from "./endpoint/pidfile.ts";
