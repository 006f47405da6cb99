// The node's WireGuard private key, kept where flannel keeps it (/run/flannel/wgkey, or the file
// WIREGUARD_KEY_FILE names): created when missing in a 0755 directory with mode 0400, holding the
// bare base64 key without a newline as flannel writes it; read with or without a trailing newline
// (`wg genkey > file` adds one). The key itself is never logged.
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';

export const DEFAULT_WG_KEY_FILE = '/run/flannel/wgkey';

/** The key file: WIREGUARD_KEY_FILE when set (flannel's os.LookupEnv), else /run/flannel/wgkey. */
export function wgKeyFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return env.WIREGUARD_KEY_FILE !== undefined ? env.WIREGUARD_KEY_FILE : DEFAULT_WG_KEY_FILE;
}

/**
 * A WireGuard key as Go's base64.StdEncoding reads it (wgtypes.ParseKey): line breaks are skipped,
 * anything else must be padded base64 of exactly 32 bytes. The message never quotes the key.
 */
export function parseWgKey(text: string): Buffer {
  const s = text.replace(/[\r\n]/g, '');
  const bad = /[^A-Za-z0-9+/=]/.exec(s);
  if (bad) throw new Error(`failed to parse base64-encoded key: illegal base64 data at input byte ${bad.index}`);
  if (s.length % 4 !== 0 || /=[^=]/.test(s) || /={3,}$/.test(s)) throw new Error('failed to parse base64-encoded key: illegal base64 data');
  const b = Buffer.from(s, 'base64');
  if (b.length !== 32) throw new Error(`incorrect key size: ${b.length}`);
  return b;
}

/** A new private key, clamped as wgtypes.GeneratePrivateKey does. */
export function generateWgPrivateKey(): Buffer {
  const k = randomBytes(32);
  k[0]! &= 248;
  k[31] = (k[31]! & 127) | 64;
  return k;
}

// PKCS#8 prefix of a raw X25519 private key (RFC 8410), to let node:crypto derive its public key.
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** X25519 public key of a private key, through OpenSSL in node:crypto. */
export function wgPublicKey(privateKey: Buffer): Buffer {
  const priv = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, privateKey]), format: 'der', type: 'pkcs8' });
  const jwk = createPublicKey(priv).export({ format: 'jwk' }) as { x?: string };
  return Buffer.from(jwk.x ?? '', 'base64url');
}

export interface WgKeyPair {
  privateKey: Buffer;
  publicKey: Buffer;
  /** True when the file did not exist and was written now. */
  created: boolean;
}

/** flannel's setupKeys: read the key file, or make a key and write it there. */
export function loadOrCreateWgKey(path: string): WgKeyPair {
  let exists = true;
  try {
    statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    exists = false;
  }
  if (exists) {
    let privateKey: Buffer;
    try {
      privateKey = parseWgKey(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new Error(`could not parse private key from file ${path}: ${(e as Error).message}`);
    }
    return { privateKey, publicKey: wgPublicKey(privateKey), created: false };
  }
  const privateKey = generateWgPrivateKey();
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    writeFileSync(path, privateKey.toString('base64'), { flag: 'wx', mode: 0o400 });
    chmodSync(path, 0o400);
  } catch (e) {
    throw new Error(`could not write key file ${path}: ${(e as Error).message}`);
  }
  return { privateKey, publicKey: wgPublicKey(privateKey), created: true };
}
