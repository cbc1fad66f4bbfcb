import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { errors } from '@shoal/errors';

/*
 * Docker Swarm's join tokens (swarmkit ca/config.go `GenerateJoinToken` / `ParseJoinToken`):
 *
 *   SWMTKN-1-<CA digest: 50 base-36 digits>-<secret: 25 base-36 digits>
 *
 * The digest pins the root CA a joining node must find at the manager it dials, before it sends
 * anything secret; the secret is what the manager checks. Both are big-endian numbers printed in
 * lowercase base 36 and zero-padded: 50 digits hold any 256-bit SHA-256, 25 any 128-bit secret.
 */

const TOKEN_PREFIX = 'SWMTKN';
const TOKEN_VERSION = '1';
const BASE = 36;
/** ceil(log36(2^256)): every SHA-256 fits. */
const DIGEST_DIGITS = 50;
/** ceil(log36(2^128)): every 16-byte secret fits. */
const SECRET_DIGITS = 25;
const SECRET_BYTES = 16;
const MAX_DIGEST = (1n << 256n) - 1n;

const base36Digits = (count: number) => new RegExp(`^[0-9a-z]{${count}}$`);
const DIGEST_PATTERN = base36Digits(DIGEST_DIGITS);
const SECRET_PATTERN = base36Digits(SECRET_DIGITS);

/** What a join token carries. */
export interface ParsedJoinToken {
  /** The token format; only version 1 (non-FIPS) exists in Shoal. */
  version: 1;
  /** SHA-256 of the root CA certificate (DER), 64 lowercase hex digits. */
  caDigest: string;
  /** The secret part, as written in the token (25 base-36 digits). */
  secret: string;
}

/**
 * The SHA-256 of the root CA certificate, in hex: what a join token pins. swarmkit hashes the PEM
 * bundle as stored; Shoal hashes the DER of the certificate, so re-wrapping the PEM (line length,
 * line endings, a trailing newline) cannot change the token. Throws INVALID_ARGUMENT if `caCertPem`
 * is not a PEM certificate. A bundle counts by its first certificate.
 */
export function caCertificateDigest(caCertPem: string): string {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(caCertPem);
  } catch (err) {
    throw errors.invalidArgument(`not a PEM certificate: ${(err as Error).message}`);
  }
  return createHash('sha256').update(certificate.raw).digest('hex');
}

/**
 * A new join token for the cluster whose root CA is `caCertPem`: swarmkit's format with 16 bytes of
 * fresh randomness as the secret. Rotating a token is making a new one.
 */
export function generateJoinToken(caCertPem: string): string {
  const digest = BigInt(`0x${caCertificateDigest(caCertPem)}`);
  const secret = BigInt(`0x${randomBytes(SECRET_BYTES).toString('hex')}`);
  return [
    TOKEN_PREFIX,
    TOKEN_VERSION,
    digest.toString(BASE).padStart(DIGEST_DIGITS, '0'),
    secret.toString(BASE).padStart(SECRET_DIGITS, '0'),
  ].join('-');
}

/**
 * The parts of a join token. Throws INVALID_ARGUMENT `invalid join token` (swarmkit's message, which
 * the docker CLI prints) for anything that is not `SWMTKN-1-<50 base-36 digits>-<25 base-36
 * digits>` with a digest that fits 256 bits. swarmkit does not check the secret's form; Shoal does,
 * since a token whose secret it could never have made can only be mistyped.
 */
export function parseJoinToken(token: string): ParsedJoinToken {
  const parts = token.split('-');
  const [prefix, version, digest, secret] = parts;
  if (
    parts.length !== 4 ||
    prefix !== TOKEN_PREFIX ||
    version !== TOKEN_VERSION ||
    digest === undefined ||
    secret === undefined ||
    !DIGEST_PATTERN.test(digest) ||
    !SECRET_PATTERN.test(secret)
  ) {
    throw errors.invalidArgument('invalid join token');
  }
  const digestValue = parseBase36(digest);
  if (digestValue > MAX_DIGEST) throw errors.invalidArgument('invalid join token');
  return { version: 1, caDigest: digestValue.toString(16).padStart(64, '0'), secret };
}

/**
 * Whether `token` was made for the root CA `caCertPem`: what a joining node checks about the CA a
 * manager presents before trusting it. A well-formed token for another CA gives false; a malformed
 * token throws INVALID_ARGUMENT `invalid join token`, as in {@link parseJoinToken}.
 */
export function joinTokenMatchesCa(token: string, caCertPem: string): boolean {
  return parseJoinToken(token).caDigest === caCertificateDigest(caCertPem);
}

/** `digits` must already be known to be lowercase base 36. */
function parseBase36(digits: string): bigint {
  let value = 0n;
  for (const digit of digits) value = value * BigInt(BASE) + BigInt(Number.parseInt(digit, BASE));
  return value;
}
