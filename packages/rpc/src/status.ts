import * as grpc from '@grpc/grpc-js';
import { ErrorCode, ShoalError, isErrorCode, isShoalError, type ErrorDetails } from '@shoal/errors';

/** Trailer carrying the exact Shoal code, since several codes share one gRPC status. */
export const ERROR_CODE_METADATA_KEY = 'shoal-error-code';
/** Binary trailer carrying the error's details as UTF-8 JSON (binary, so any text survives). */
export const ERROR_DETAILS_METADATA_KEY = 'shoal-error-details-bin';

/** The gRPC status each Shoal code travels as. */
export const grpcStatusByCode: Readonly<Record<ErrorCode, grpc.status>> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  NAME_CONFLICT: grpc.status.ALREADY_EXISTS,
  CONFLICT: grpc.status.ABORTED,
  COMPACTED: grpc.status.OUT_OF_RANGE,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  DEADLINE_EXCEEDED: grpc.status.DEADLINE_EXCEEDED,
  CANCELLED: grpc.status.CANCELLED,
  UNIMPLEMENTED: grpc.status.UNIMPLEMENTED,
  INTERNAL: grpc.status.INTERNAL,
};

/**
 * The Shoal code for a status that arrived without a `shoal-error-code` trailer: one raised by gRPC
 * itself (no connection, deadline, cancellation) or by a server that is not Shoal's.
 */
const codeByGrpcStatus: Readonly<Record<grpc.status, ErrorCode>> = {
  [grpc.status.OK]: ErrorCode.Internal,
  [grpc.status.CANCELLED]: ErrorCode.Cancelled,
  [grpc.status.UNKNOWN]: ErrorCode.Internal,
  [grpc.status.INVALID_ARGUMENT]: ErrorCode.InvalidArgument,
  [grpc.status.DEADLINE_EXCEEDED]: ErrorCode.DeadlineExceeded,
  [grpc.status.NOT_FOUND]: ErrorCode.NotFound,
  [grpc.status.ALREADY_EXISTS]: ErrorCode.AlreadyExists,
  [grpc.status.PERMISSION_DENIED]: ErrorCode.PermissionDenied,
  [grpc.status.RESOURCE_EXHAUSTED]: ErrorCode.ResourceExhausted,
  [grpc.status.FAILED_PRECONDITION]: ErrorCode.FailedPrecondition,
  [grpc.status.ABORTED]: ErrorCode.Conflict,
  [grpc.status.OUT_OF_RANGE]: ErrorCode.InvalidArgument,
  [grpc.status.UNIMPLEMENTED]: ErrorCode.Unimplemented,
  [grpc.status.INTERNAL]: ErrorCode.Internal,
  [grpc.status.UNAVAILABLE]: ErrorCode.Unavailable,
  [grpc.status.DATA_LOSS]: ErrorCode.Internal,
  [grpc.status.UNAUTHENTICATED]: ErrorCode.Unauthenticated,
};

/** A gRPC error as a server handler returns it and a client receives it. */
export type GrpcError = grpc.ServiceError;

/** What the client sees instead of the message of an error that was not a ShoalError. */
const INTERNAL_ERROR_MESSAGE = 'internal error';

/**
 * Converts anything a handler threw into the gRPC error to answer with. A ShoalError keeps its message,
 * and its exact code and details travel in trailers so that {@link fromGrpcError} rebuilds it. Anything
 * else becomes INTERNAL with a fixed message: its text and stack may describe server internals, so they
 * stay in the server's log.
 */
export function toGrpcError(err: unknown): GrpcError {
  const shoal = isShoalError(err) ? err : undefined;
  const code = shoal?.code ?? ErrorCode.Internal;
  const message = shoal?.message ?? INTERNAL_ERROR_MESSAGE;
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_METADATA_KEY, code);
  if (shoal !== undefined && Object.keys(shoal.details).length > 0) {
    metadata.set(ERROR_DETAILS_METADATA_KEY, Buffer.from(encodeDetails(shoal.details), 'utf8'));
  }
  return Object.assign(new Error(message), { code: grpcStatusByCode[code], details: message, metadata });
}

/**
 * Converts a gRPC error received by a client back into a ShoalError: the same code, message and details
 * the server threw when it came from a Shoal server, otherwise the closest code for its status. The gRPC
 * error is kept as `cause`.
 */
export function fromGrpcError(err: Partial<grpc.StatusObject> & Error): ShoalError {
  const sentCode = err.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
  const code = isErrorCode(sentCode) ? sentCode : codeByGrpcStatus[err.code ?? grpc.status.UNKNOWN];
  const sentDetails = err.metadata?.get(ERROR_DETAILS_METADATA_KEY)[0];
  const details = Buffer.isBuffer(sentDetails) ? decodeDetails(sentDetails.toString('utf8')) : {};
  return new ShoalError(code, err.details ?? err.message, { details, cause: err });
}

/** JSON has no bigint; versions and raft indexes are bigints, so they travel tagged as decimal strings. */
const BIGINT_TAG = '$bigint';

function encodeDetails(details: ErrorDetails): string {
  return JSON.stringify(details, (_key, value: unknown) => (typeof value === 'bigint' ? { [BIGINT_TAG]: value.toString() } : value));
}

function decodeDetails(json: string): ErrorDetails {
  try {
    const parsed: unknown = JSON.parse(json, (_key, value: unknown) => {
      const tagged = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[BIGINT_TAG] : undefined;
      return typeof tagged === 'string' ? BigInt(tagged) : value;
    });
    return typeof parsed === 'object' && parsed !== null ? (parsed as ErrorDetails) : {};
  } catch {
    // Details are context for humans and retries; a peer sending garbage must not turn its error into ours.
    return {};
  }
}
