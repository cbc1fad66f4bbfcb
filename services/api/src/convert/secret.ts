import { timingSafeEqual } from 'node:crypto';
import { errors } from '@shoal/errors';
import type { Annotations, Driver, Secret, SecretSpec } from '@shoal/proto';
import { Decoder } from './decode.js';
import { type DockerAnnotations, type DockerDriver, annotationsFromDocker, annotationsToDocker, driverFromDocker, driverToDocker } from './network.js';
import { type DockerMeta, dockerMeta } from './wire.js';

/*
 * Secrets as dockerd 20.10 takes and shows them (daemon/cluster/convert/secret.go), validated as
 * swarmkit's control API does (manager/controlapi/secret.go, common.go, api/validation). Configs are
 * the same object without the confidentiality, so config.ts builds on the shared parts here.
 */

/** Largest secret or config payload plus one: data must be shorter (swarmkit's `MaxSecretSize`). */
export const MAX_PAYLOAD_BYTES = 500 * 1024;

/** swarmkit's `isValidConfigOrSecretName`. */
const SECRET_OR_CONFIG_NAME = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;
const MAX_SECRET_OR_CONFIG_NAME_LENGTH = 64;

/** A secret in Docker's JSON. It never carries the data. */
export interface DockerSecret extends DockerMeta {
  Spec: DockerAnnotations & {
    /** An external secret store that provides the data. */
    Driver?: DockerDriver;
    Templating?: DockerDriver;
  };
}

/** What secret and config specs share, as a Docker body carries it. */
export interface PayloadSpecFields {
  annotations: Annotations;
  /** Empty when the body has no `Data`. */
  data: Buffer;
  templating: Driver | undefined;
}

/**
 * The body of `POST /secrets/create`: `Name`, `Labels`, `Data` (standard base64), `Driver`,
 * `Templating`. The name must be 1–64 of `[a-zA-Z0-9-_.]` starting and ending alphanumeric; the data
 * 1 byte to under 500 KiB, unless a `Driver` (which must be named) provides it. Errors are
 * INVALID_ARGUMENT with swarmkit's and Go's messages.
 */
export function secretSpecFromDocker(body: unknown): SecretSpec {
  const decoder = Decoder.root(body, 'SecretSpec');
  const fields = payloadSpecFromDocker(decoder);
  const driver = driverFromDocker(decoder, 'Driver');
  validateSecretOrConfigName(fields.annotations.name);
  if (driver !== undefined) {
    if (driver.name === '') throw errors.invalidArgument('secret driver must have a name');
  } else {
    checkPayloadSize('secret', fields.data);
  }
  return { ...fields, driver };
}

/**
 * swarmkit's rule for `POST /secrets/{id}/update`: only labels may change. A different name, or data
 * that differs from the stored data, is INVALID_ARGUMENT `only updates to Labels are allowed`; the
 * same data again (what `docker stack deploy` sends) or none is accepted. Data is compared in
 * constant time.
 */
export function requireOnlyLabelsChanged(current: SecretSpec, requested: SecretSpec): void {
  requireSameNameAndData(current, requested, constantTimeEqual);
}

/** A secret as `GET /secrets` shows it: the data never leaves the managers this way. */
export function secretToDocker(secret: Secret): DockerSecret {
  const spec = secret.spec;
  return {
    ...dockerMeta(secret.id, secret.meta),
    Spec: {
      ...annotationsToDocker(spec?.annotations),
      Driver: spec?.driver && driverToDocker(spec.driver),
      Templating: spec?.templating && driverToDocker(spec.templating),
    },
  };
}

/**
 * Checks a secret or config name as swarmkit does. Throws INVALID_ARGUMENT `name must be provided`,
 * or `invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must
 * be [a-zA-Z0-9]`.
 */
export function validateSecretOrConfigName(name: string): void {
  if (name === '') throw errors.invalidArgument('name must be provided');
  if (name.length > MAX_SECRET_OR_CONFIG_NAME_LENGTH || !SECRET_OR_CONFIG_NAME.test(name)) {
    throw errors.invalidArgument(
      `invalid name, only ${MAX_SECRET_OR_CONFIG_NAME_LENGTH} [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]`,
    );
  }
}

/** `Name`, `Labels`, `Data` and `Templating`, decoded but not validated. */
export function payloadSpecFromDocker(decoder: Decoder): PayloadSpecFields {
  return {
    annotations: annotationsFromDocker(decoder),
    data: bytesFromDocker(decoder, 'Data') ?? Buffer.alloc(0),
    templating: driverFromDocker(decoder, 'Templating'),
  };
}

/** swarmkit's size rule, `<kind> data must be larger than 0 and less than 512000 bytes`. */
export function checkPayloadSize(kind: 'secret' | 'config', data: Buffer): void {
  if (data.length < 1 || data.length >= MAX_PAYLOAD_BYTES) {
    throw errors.invalidArgument(`${kind} data must be larger than 0 and less than ${MAX_PAYLOAD_BYTES} bytes`);
  }
}

/**
 * swarmkit's update rule for secrets and configs: the name stays, and data, when sent, is the stored
 * data (an empty payload cannot be stored, so empty means not sent).
 */
export function requireSameNameAndData(
  current: { annotations?: Annotations | undefined; data: Buffer },
  requested: { annotations?: Annotations | undefined; data: Buffer },
  sameData: (stored: Buffer, sent: Buffer) => boolean,
): void {
  const renamed = (requested.annotations?.name ?? '') !== (current.annotations?.name ?? '');
  if (renamed || (requested.data.length > 0 && !sameData(current.data, requested.data))) {
    throw errors.invalidArgument('only updates to Labels are allowed');
  }
}

/**
 * A Go `[]byte` field: standard base64 with padding, line breaks ignored, decoded as encoding/json
 * does; a malformed one is INVALID_ARGUMENT with Go's `illegal base64 data at input byte N`.
 */
export function bytesFromDocker(decoder: Decoder, key: string): Buffer | undefined {
  const value = decoder.raw(key);
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    throw errors.invalidArgument(`json: cannot unmarshal ${goJsonKind(value)} into Go struct field ${decoder.pathOf(key)} of type []uint8`);
  }
  const illegalAt = firstIllegalBase64Byte(Buffer.from(value, 'utf8'));
  if (illegalAt !== undefined) throw errors.invalidArgument(`illegal base64 data at input byte ${illegalAt}`);
  return Buffer.from(value.replace(/[\r\n]/g, ''), 'base64');
}

function constantTimeEqual(stored: Buffer, sent: Buffer): boolean {
  return stored.length === sent.length && timingSafeEqual(stored, sent);
}

const BASE64_ALPHABET = new Set(Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'));
const PAD = 0x3d; // '='
const isLineBreak = (byte: number | undefined) => byte === 0x0a || byte === 0x0d;

/**
 * Where Go's `base64.StdEncoding.Decode` stops with a CorruptInputError, or undefined when the
 * input decodes: a port of its `decodeQuantum`, so the offsets in error messages match dockerd's.
 */
function firstIllegalBase64Byte(input: Buffer): number | undefined {
  let at = 0;
  while (at < input.length) {
    let digits = 0;
    while (digits < 4) {
      if (at === input.length) return digits === 0 ? undefined : at - digits;
      const byte = input[at++];
      if (byte !== undefined && BASE64_ALPHABET.has(byte)) {
        digits++;
      } else if (isLineBreak(byte)) {
        continue;
      } else if (byte !== PAD || digits < 2) {
        return at - 1;
      } else {
        if (digits === 2) {
          // "==" closes a quantum of two digits; the first "=" is already read.
          while (isLineBreak(input[at])) at++;
          if (at === input.length) return input.length;
          if (input[at] !== PAD) return at - 1;
          at++;
        }
        while (isLineBreak(input[at])) at++;
        // Padding ends the data: anything after it is garbage.
        return at < input.length ? at : undefined;
      }
    }
  }
  return undefined;
}

/** Go's name for the kind of a JSON value in unmarshal errors. */
function goJsonKind(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'boolean') return 'bool';
  return typeof value === 'object' ? 'object' : typeof value;
}
