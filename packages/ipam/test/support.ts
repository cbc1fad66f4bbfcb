import { isShoalError, type ShoalError } from '@shoal/errors';

/** Runs `action`, which must throw a ShoalError, and returns that error for assertions. */
export function thrown(action: () => unknown): ShoalError {
  try {
    action();
  } catch (error) {
    if (isShoalError(error)) return error;
    throw error;
  }
  throw new Error('expected a ShoalError, but nothing was thrown');
}
