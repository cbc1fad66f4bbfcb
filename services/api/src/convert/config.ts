import type { Config, ConfigSpec } from '@shoal/proto';
import { Decoder } from './decode.js';
import { type DockerAnnotations, type DockerDriver, annotationsToDocker, driverToDocker } from './network.js';
import { checkPayloadSize, payloadSpecFromDocker, requireSameNameAndData, validateSecretOrConfigName } from './secret.js';
import { type DockerMeta, dockerMeta } from './wire.js';

/*
 * Configs as dockerd 20.10 takes and shows them (daemon/cluster/convert/config.go): a secret that
 * is not confidential, so `Data` is shown, and there is no external driver.
 */

/** A config in Docker's JSON, data included. */
export interface DockerConfig extends DockerMeta {
  Spec: DockerAnnotations & {
    /** Standard base64. */
    Data?: string;
    Templating?: DockerDriver;
  };
}

/**
 * The body of `POST /configs/create`: `Name`, `Labels`, `Data` (standard base64) and `Templating`.
 * The name follows the secret rules; the data is 1 byte to under 500 KiB. Errors are
 * INVALID_ARGUMENT with swarmkit's and Go's messages.
 */
export function configSpecFromDocker(body: unknown): ConfigSpec {
  const fields = payloadSpecFromDocker(Decoder.root(body, 'ConfigSpec'));
  validateSecretOrConfigName(fields.annotations.name);
  checkPayloadSize('config', fields.data);
  return fields;
}

/**
 * swarmkit's rule for `POST /configs/{id}/update`: only labels may change. A different name or
 * different data is INVALID_ARGUMENT `only updates to Labels are allowed`; the same data again or
 * none is accepted.
 */
export function requireOnlyLabelsChanged(current: ConfigSpec, requested: ConfigSpec): void {
  requireSameNameAndData(current, requested, (stored, sent) => stored.equals(sent));
}

/** A config as `GET /configs` shows it, with its data in base64. */
export function configToDocker(config: Config): DockerConfig {
  const spec = config.spec;
  return {
    ...dockerMeta(config.id, config.meta),
    Spec: {
      ...annotationsToDocker(spec?.annotations),
      Data: spec?.data.length ? spec.data.toString('base64') : undefined,
      Templating: spec?.templating && driverToDocker(spec.templating),
    },
  };
}
