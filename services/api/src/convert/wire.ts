import type { Duration, Meta } from '@shoal/proto';

/** Go's zero time, which dockerd prints for a timestamp that was never set. */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * A timestamp as Docker prints it: RFC 3339 with up to nine fractional digits and no trailing
 * zeros (Go's RFC3339Nano). Our timestamps carry milliseconds, so at most three digits appear.
 */
export function dockerTime(time: Date | undefined): string {
  if (time === undefined || Number.isNaN(time.getTime())) return GO_ZERO_TIME;
  return time.toISOString().replace(/\.?0+Z$/, 'Z');
}

/** A protobuf duration as Docker's JSON carries it: integer nanoseconds. */
export function nanosOf(duration: Duration): number {
  return Number(duration.seconds) * 1e9 + duration.nanos;
}

/** Integer nanoseconds (as Docker's JSON carries durations) as a protobuf duration. */
export function durationOfNanos(nanos: number): Duration {
  const seconds = Math.trunc(nanos / 1e9);
  return { seconds: BigInt(seconds), nanos: nanos - seconds * 1e9 };
}

/** The object metadata every Docker swarm object starts with. */
export interface DockerMeta {
  ID: string;
  Version: { Index: number };
  CreatedAt: string;
  UpdatedAt: string;
}

/** `ID`, `Version`, `CreatedAt` and `UpdatedAt` of a stored object. */
export function dockerMeta(id: string, meta: Meta | undefined): DockerMeta {
  return {
    ID: id,
    Version: { Index: Number(meta?.version?.index ?? 0n) },
    CreatedAt: dockerTime(meta?.createdAt),
    UpdatedAt: dockerTime(meta?.updatedAt),
  };
}
