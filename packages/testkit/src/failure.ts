import { isShoalError } from '@shoal/errors';

/** The code (for a ShoalError) and message of what `action` throws; fails the test if it returns. */
export function failure(action: () => unknown): { code: string | undefined; message: string } {
  try {
    action();
  } catch (error) {
    return { code: isShoalError(error) ? error.code : undefined, message: error instanceof Error ? error.message : String(error) };
  }
  throw new Error('expected the call to throw');
}
