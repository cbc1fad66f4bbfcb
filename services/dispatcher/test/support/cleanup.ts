import { afterEach } from 'vitest';

const pending: Array<() => unknown> = [];

/** Undoes something the current test made, once it ends (pass or fail); the last deferred runs first. */
export function defer(cleanup: () => unknown): void {
  pending.push(cleanup);
}

afterEach(async () => {
  for (const cleanup of pending.splice(0).reverse()) await cleanup();
});
