import { randomBytes } from 'node:crypto';
import { errors } from '@shoal/errors';

/** Entropy per ID: 17 bytes (136 bits), one more than 128 so the leading digit is not biased. */
const entropyBytes = 17;
const idLength = 25;

/** A source of random bytes; {@link newId} uses node's CSPRNG unless given another. */
export type RandomBytesSource = (size: number) => Uint8Array;

/**
 * Returns a new object ID: 25 lowercase base-36 characters carrying about 129 bits of entropy,
 * made exactly as swarmkit's `identity.NewID`. The high bit of the 17 random bytes is set so the
 * number always has 27 base-36 digits; the first digit (which that bit biases) is dropped and the
 * next 25 kept, so every ID has the same length with no padding.
 *
 * @param random Where the bytes come from; pass a seeded source only for deterministic simulation.
 */
export function newId(random: RandomBytesSource = randomBytes): string {
  const bytes = random(entropyBytes);
  if (bytes.length !== entropyBytes) {
    throw errors.internal(`random source returned ${bytes.length} bytes, want ${entropyBytes}`, {
      got: bytes.length,
    });
  }
  const withHighBit = Buffer.from(bytes);
  withHighBit[0] = withHighBit[0]! | 0x80;
  return BigInt(`0x${withHighBit.toString('hex')}`).toString(36).slice(1, idLength + 1);
}
