/**
 * Shoal's error vocabulary. Code inside Shoal throws {@link ShoalError}s carrying a {@link ErrorCode};
 * only the edges (gRPC handlers and clients in `@shoal/rpc`, the HTTP API) translate codes into wire
 * statuses, so a component never has to know which transport its caller used.
 */

/** Every condition Shoal distinguishes. Check errors by code, never by message text. */
export const ErrorCode = {
  /** The request is malformed or names something impossible; retrying it unchanged fails again. */
  InvalidArgument: 'INVALID_ARGUMENT',
  NotFound: 'NOT_FOUND',
  /** An object with that ID already exists. */
  AlreadyExists: 'ALREADY_EXISTS',
  /** Another object of the same kind already has that name (names are unique per kind, case-insensitive). */
  NameConflict: 'NAME_CONFLICT',
  /** A version precondition was stale: someone else wrote the object first. Re-read and retry. */
  Conflict: 'CONFLICT',
  /** A watch asked to resume from a version whose changes are no longer kept. Resync from a snapshot. */
  Compacted: 'COMPACTED',
  /** The system is not in a state that allows the operation (e.g. not a swarm manager, object in use). */
  FailedPrecondition: 'FAILED_PRECONDITION',
  /** A size or count limit was exceeded. */
  ResourceExhausted: 'RESOURCE_EXHAUSTED',
  Unauthenticated: 'UNAUTHENTICATED',
  PermissionDenied: 'PERMISSION_DENIED',
  /** Temporarily impossible (no leader, peer unreachable); retrying later may succeed. */
  Unavailable: 'UNAVAILABLE',
  DeadlineExceeded: 'DEADLINE_EXCEEDED',
  Cancelled: 'CANCELLED',
  Unimplemented: 'UNIMPLEMENTED',
  Internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const codes = new Set<string>(Object.values(ErrorCode));

/** Returns true if `value` is one of Shoal's error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && codes.has(value);
}

/** Structured context an error carries besides its message (object IDs, versions, limits). */
export type ErrorDetails = Record<string, string | number | boolean | bigint | undefined>;

export interface ShoalErrorOptions {
  details?: ErrorDetails;
  cause?: unknown;
}

/**
 * The one error class Shoal throws on purpose. `instanceof` is not relied on across package copies:
 * use {@link isShoalError} or {@link hasCode}, which check the brand.
 */
export class ShoalError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, options: ShoalErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ShoalError';
    this.code = code;
    this.details = options.details ?? {};
  }

  /** Marks the object so that {@link isShoalError} recognises it even when two copies of this package are loaded. */
  get [Symbol.for('shoal.error')](): true {
    return true;
  }
}

/** Returns true for any ShoalError, including ones built by another copy of this package. */
export function isShoalError(err: unknown): err is ShoalError {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[Symbol.for('shoal.error')] === true;
}

/** Returns true if `err` is a ShoalError with the given code. */
export function hasCode(err: unknown, code: ErrorCode): err is ShoalError {
  return isShoalError(err) && err.code === code;
}

/** Codes for which the same request may succeed later without being changed. */
const retryable = new Set<ErrorCode>([ErrorCode.Conflict, ErrorCode.Unavailable, ErrorCode.DeadlineExceeded]);

/** Returns true if retrying the failed operation (after re-reading, for conflicts) can succeed. */
export function isRetryable(err: unknown): boolean {
  return isShoalError(err) && retryable.has(err.code);
}

/** Wraps anything thrown into a ShoalError, keeping ShoalErrors as they are and the original as `cause`. */
export function toShoalError(err: unknown): ShoalError {
  if (isShoalError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ShoalError(ErrorCode.Internal, message, { cause: err });
}

/** Short constructors for the common cases, so call sites read as the condition they report. */
export const errors = {
  invalidArgument: (message: string, details?: ErrorDetails) => new ShoalError(ErrorCode.InvalidArgument, message, { details }),
  notFound: (message: string, details?: ErrorDetails) => new ShoalError(ErrorCode.NotFound, message, { details }),
  alreadyExists: (message: string, details?: ErrorDetails) => new ShoalError(ErrorCode.AlreadyExists, message, { details }),
  nameConflict: (message: string, details?: ErrorDetails) => new ShoalError(ErrorCode.NameConflict, message, { details }),
  conflict: (message: string, details?: ErrorDetails) => new ShoalError(ErrorCode.Conflict, message, { details }),
  compacted: (message: string, details?: ErrorDetails) => new ShoalError(ErrorCode.Compacted, message, { details }),
  failedPrecondition: (message: string, details?: ErrorDetails) => new ShoalError(ErrorCode.FailedPrecondition, message, { details }),
  resourceExhausted: (message: string, details?: ErrorDetails) => new ShoalError(ErrorCode.ResourceExhausted, message, { details }),
  unavailable: (message: string, details?: ErrorDetails) => new ShoalError(ErrorCode.Unavailable, message, { details }),
  internal: (message: string, details?: ErrorDetails) => new ShoalError(ErrorCode.Internal, message, { details }),
};

/**
 * The HTTP status the Docker-compatible API answers for each code. Docker itself answers 409 for name
 * conflicts and 404 for unknown objects; the API edge may still pick a more specific status per route.
 */
export const httpStatusByCode: Readonly<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  NAME_CONFLICT: 409,
  CONFLICT: 409,
  COMPACTED: 410,
  FAILED_PRECONDITION: 503,
  RESOURCE_EXHAUSTED: 413,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
  CANCELLED: 499,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
};
