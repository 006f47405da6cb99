// systemd's readiness protocol (sd_notify(3)) for Type=notify units: one datagram to $NOTIFY_SOCKET,
// sent by native/js/sd_notify.cc because Node cannot send AF_UNIX datagrams.
import { addonFunctions } from './addon.js';

interface SdNotifyExports {
  sdNotify(address: string, state: string): void;
}

/**
 * Sends `state` (e.g. "READY=1") to $NOTIFY_SOCKET. Returns false when the variable is unset or empty
 * (not started by systemd, or by a unit of another Type): nothing to tell. Throws with the errno name
 * when the socket cannot be reached.
 */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const address = env.NOTIFY_SOCKET ?? '';
  if (address === '') return false;
  addonFunctions<SdNotifyExports>(['sdNotify']).sdNotify(address, state);
  return true;
}
