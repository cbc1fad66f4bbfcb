import { ErrorCode, ShoalError, isShoalError } from '@shoal/errors';

/** What dockerode attaches to an error: the HTTP status and the engine's JSON body, or a socket error code. */
interface EngineFailure {
  readonly statusCode?: unknown;
  readonly json?: { readonly message?: unknown } | null;
  readonly code?: unknown;
  readonly message?: unknown;
}

/** Statuses the engine answers and the code each becomes; anything else is INTERNAL. */
const codeByStatus: Readonly<Record<number, ErrorCode>> = {
  400: ErrorCode.InvalidArgument,
  401: ErrorCode.Unauthenticated,
  403: ErrorCode.PermissionDenied,
  404: ErrorCode.NotFound,
  // The engine answers 409 for state conflicts ("container is not running", "removal already in progress").
  409: ErrorCode.FailedPrecondition,
  503: ErrorCode.Unavailable,
};

/** Socket errors meaning dockerd is not there (stopped, restarting, or the socket path is wrong). */
const unreachableCodes = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'EPIPE', 'ECONNRESET']);

/** The engine's HTTP status for a failed call, if it answered at all. */
export function engineStatus(err: unknown): number | undefined {
  const status = (err as EngineFailure | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Docker's own words for a failed call (`No such container: web.1.x`), without the
 * `(HTTP code 404) no such container - ` prefix dockerode puts in front of them.
 */
function engineMessage(err: unknown): string {
  const failure = err as EngineFailure | null;
  const bodyMessage = failure?.json?.message;
  if (typeof bodyMessage === 'string' && bodyMessage !== '') return bodyMessage;
  const message = typeof failure?.message === 'string' ? failure.message : String(err);
  // Streamed endpoints (pull, logs, events) have no parsed body; the engine's message is in dockerode's text.
  return /^\(HTTP code \d+\) .*? - ([\s\S]*?)\s*$/.exec(message)?.[1] ?? message;
}

/**
 * A failed engine call as a ShoalError whose message is Docker's. A call cut short by `signal` is
 * CANCELLED; one that never reached dockerd is UNAVAILABLE.
 */
export function engineError(err: unknown, signal?: AbortSignal): ShoalError {
  if (isShoalError(err)) return err;
  if (signal?.aborted === true) return new ShoalError(ErrorCode.Cancelled, 'the Docker engine call was cancelled', { cause: err });
  const status = engineStatus(err);
  const message = engineMessage(err);
  if (status === undefined) {
    const socketCode = (err as EngineFailure | null)?.code;
    if (typeof socketCode === 'string' && unreachableCodes.has(socketCode)) {
      return new ShoalError(ErrorCode.Unavailable, `cannot reach the Docker engine: ${message}`, { cause: err });
    }
    return new ShoalError(ErrorCode.Internal, message, { cause: err });
  }
  return new ShoalError(codeByStatus[status] ?? ErrorCode.Internal, message, { cause: err, details: { status } });
}

/** Awaits one engine call, turning its failure into {@link engineError}. */
export async function callEngine<T>(call: Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw engineError(err, signal);
  }
}

/**
 * Like {@link callEngine}, but resolves `undefined` when the engine answers one of `statuses`: the
 * answers that mean "already done" for idempotent steps (404 for a container that is gone, 304 for one
 * that is already stopped).
 */
export async function callEngineTolerating<T>(statuses: readonly number[], call: Promise<T>, signal?: AbortSignal): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    const status = engineStatus(err);
    if (status !== undefined && statuses.includes(status) && signal?.aborted !== true) return undefined;
    throw engineError(err, signal);
  }
}

/**
 * Settles like `work`, or rejects with CANCELLED as soon as `signal` aborts. For work that must go on
 * when one caller stops waiting (an image pull another attempt will pick up).
 */
export function untilSettledOrAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  const cancelled = () => new ShoalError(ErrorCode.Cancelled, 'the Docker engine call was cancelled');
  if (signal.aborted) return Promise.reject(cancelled());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
