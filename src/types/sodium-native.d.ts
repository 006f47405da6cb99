// The two libsodium calls flannelts uses (sodium-native ships no types): XChaCha20-Poly1305 for
// WireGuard cookie replies, which OpenSSL does not have.
declare module 'sodium-native' {
  export function crypto_aead_xchacha20poly1305_ietf_encrypt(c: Buffer, m: Buffer, ad: Buffer | null, nsec: null, npub: Buffer, k: Buffer): number;
  /** Throws when the tag does not verify. */
  export function crypto_aead_xchacha20poly1305_ietf_decrypt(m: Buffer, nsec: null, c: Buffer, ad: Buffer | null, npub: Buffer, k: Buffer): number;
}
