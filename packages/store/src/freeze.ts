/**
 * Freezes `value` and everything reachable from it, in place, and returns it.
 *
 * A subtree that is already frozen is taken to be deeply frozen and skipped. Stored objects are
 * only ever frozen through this function, so the rule holds for everything the store hands out,
 * and it is what makes a write cheap: an update built as `{ ...task, status }` shares every other
 * subtree with the stored version, and only the new `status` gets walked.
 *
 * Typed arrays (a secret's `data`) cannot be frozen by JavaScript and are left as they are, as is
 * the internal time of a `Date`: readers must treat both as read-only.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value) || ArrayBuffer.isView(value)) {
    return value;
  }
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze(child);
  return value;
}
