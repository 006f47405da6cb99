// The one WireGuard step not in OpenSSL: XChaCha20-Poly1305 for cookie replies (the paper, 5.4.7),
// from libsodium through sodium-native. The native device hands out jobs (seal a cookie for an
// initiator we are too busy to answer; open a cookie a busy responder sent us) and takes the answers
// back. Cookie replies only happen under load, so this path is rare by design; the data plane never
// comes here. sodium-native is loaded on first use (most nodes never see a cookie).
import { createRequire } from 'node:module';
import type { CookieOpenJob, CookieSealJob, WgDevice, WgNow, WgOutput } from '../../native/wireguard.js';

export interface XChaCha20Poly1305 {
  seal(key: Buffer, nonce: Buffer, plaintext: Buffer, aad: Buffer): Buffer;
  /** null when the tag does not verify. */
  open(key: Buffer, nonce: Buffer, sealed: Buffer, aad: Buffer): Buffer | null;
}

const TAG = 16;
let sodium: typeof import('sodium-native') | undefined;

function lib(): typeof import('sodium-native') {
  if (!sodium) sodium = createRequire(import.meta.url)('sodium-native') as typeof import('sodium-native');
  return sodium;
}

export const libsodiumXChaCha: XChaCha20Poly1305 = {
  seal(key, nonce, plaintext, aad) {
    const out = Buffer.alloc(plaintext.length + TAG);
    lib().crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, aad, null, nonce, key);
    return out;
  },
  open(key, nonce, sealed, aad) {
    if (sealed.length < TAG) return null;
    const out = Buffer.alloc(sealed.length - TAG);
    try {
      lib().crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, sealed, aad, nonce, key);
      return out;
    } catch {
      return null;
    }
  },
};

export interface CookieAnswers {
  /** What the device sent as a result (the cookie replies). */
  sends: WgOutput['sends'];
  /** Cookies a peer gave us that the device took (its next handshake carries MAC2). */
  cookiesTaken: number;
  /** Cookie replies that did not open (forged, or for an older handshake). */
  cookiesRejected: number;
}

/** Carries out a device's cookie jobs and hands the results back to it. */
export function answerCookieJobs(
  device: Pick<WgDevice, 'completeCookieSeal' | 'consumeCookie'>,
  jobs: { cookieSeals: CookieSealJob[]; cookieOpens: CookieOpenJob[] },
  now: WgNow,
  aead: XChaCha20Poly1305 = libsodiumXChaCha,
): CookieAnswers {
  const result: CookieAnswers = { sends: [], cookiesTaken: 0, cookiesRejected: 0 };
  for (const job of jobs.cookieSeals) {
    result.sends.push(...device.completeCookieSeal(job, aead.seal(job.key, job.nonce, job.cookie, job.aad)).sends);
  }
  for (const job of jobs.cookieOpens) {
    const cookie = aead.open(job.key, job.nonce, job.sealed, job.aad);
    if (cookie && device.consumeCookie(job.peer, cookie, job.aad, now)) result.cookiesTaken++;
    else result.cookiesRejected++;
  }
  return result;
}
