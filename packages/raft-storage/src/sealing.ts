import { createCipheriv, createDecipheriv, hkdfSync, randomFillSync } from 'node:crypto';

/** Length in bytes of every key here: data keys, key-encryption keys and per-file keys (AES-256). */
export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** Bytes a sealed box adds to its plaintext: the random nonce in front and the GCM tag behind. */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/**
 * Seals `plaintext` with AES-256-GCM under `key` and a fresh random 96-bit nonce. `aad` is
 * authenticated but not stored: the reader must rebuild it from where the box sits (its kind, its
 * position), which is what stops sealed records from being moved or swapped undetected.
 *
 * Returns `nonce | ciphertext | tag`, preceded by `reserve` uninitialised bytes the caller fills with
 * its own framing, so a record is built in one buffer instead of being copied into one.
 */
export function seal(key: Buffer, plaintext: Uint8Array, aad: Uint8Array, reserve = 0): Buffer {
  const out = Buffer.allocUnsafe(reserve + SEAL_OVERHEAD + plaintext.length);
  const nonce = randomFillSync(out.subarray(reserve, reserve + NONCE_BYTES));
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  let at = reserve + NONCE_BYTES;
  at += cipher.update(plaintext).copy(out, at);
  at += cipher.final().copy(out, at);
  cipher.getAuthTag().copy(out, at);
  return out;
}

/**
 * Opens a box made by {@link seal}. Returns undefined when it does not authenticate (wrong key, wrong
 * `aad`, or any flipped bit): callers decide whether that means corruption or a wrong unlock key.
 */
export function unseal(key: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer | undefined {
  if (sealed.length < SEAL_OVERHEAD) return undefined;
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES));
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  const body = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return body;
}

/**
 * Derives a 32-byte key with HKDF-SHA256. HKDF, not a password hash, because every input here is
 * already a uniformly random 256-bit key: there is no low-entropy secret for scrypt's work factor to
 * protect, only a need for independent keys per purpose and per file.
 */
export function deriveKey(inputKey: Buffer, salt: Uint8Array, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', inputKey, salt, `shoal raft-storage ${purpose}`, KEY_BYTES));
}
