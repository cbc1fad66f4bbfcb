import { describe, expect, it } from 'vitest';
import { ErrorCode, ShoalError, errors, hasCode, httpStatusByCode, isErrorCode, isRetryable, isShoalError, toShoalError } from '../src/index.js';

describe('errors', () => {
  it('a ShoalError keeps its code, details and cause', () => {
    const cause = new Error('disk');
    const err = new ShoalError(ErrorCode.Conflict, 'stale write to task t1', { details: { objectId: 't1', version: 7n }, cause });
    expect(err.code).toBe('CONFLICT');
    expect(err.details).toEqual({ objectId: 't1', version: 7n });
    expect(err.cause).toBe(cause);
    expect(err).toBeInstanceOf(Error);
  });

  it('recognises ShoalErrors by brand, not by prototype', () => {
    const foreign = Object.assign(new Error('x'), { code: 'NOT_FOUND', [Symbol.for('shoal.error')]: true });
    expect(isShoalError(foreign)).toBe(true);
    expect(isShoalError(Object.assign(new Error('x'), { code: 'NOT_FOUND' }))).toBe(false);
    expect(hasCode(errors.notFound('gone'), ErrorCode.NotFound)).toBe(true);
    expect(hasCode(errors.notFound('gone'), ErrorCode.Conflict)).toBe(false);
  });

  it('only conflicts, unavailability and deadlines are retryable', () => {
    expect(isRetryable(errors.conflict('c'))).toBe(true);
    expect(isRetryable(errors.unavailable('u'))).toBe(true);
    expect(isRetryable(errors.invalidArgument('i'))).toBe(false);
    expect(isRetryable(new Error('plain'))).toBe(false);
  });

  it('wraps foreign throwables as INTERNAL and leaves ShoalErrors untouched', () => {
    const own = errors.nameConflict('name taken');
    expect(toShoalError(own)).toBe(own);
    const wrapped = toShoalError('boom');
    expect(wrapped.code).toBe('INTERNAL');
    expect(wrapped.message).toBe('boom');
  });

  it('every code has an HTTP status and is recognised as a code', () => {
    for (const code of Object.values(ErrorCode)) {
      expect(isErrorCode(code)).toBe(true);
      expect(httpStatusByCode[code]).toBeGreaterThanOrEqual(400);
    }
    expect(isErrorCode('NOPE')).toBe(false);
  });
});
