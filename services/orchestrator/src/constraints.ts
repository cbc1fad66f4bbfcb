import { parseConstraints, type Constraint } from '@shoal/constraints';
import type { Node } from '@shoal/proto';

/** Parsed constraint lists by their text: a global service checks the same list against every node. */
const parsedByText = new Map<string, Constraint[] | undefined>();
const MAX_CACHED = 1_000;

function parsed(constraints: readonly string[]): Constraint[] | undefined {
  const text = constraints.join('\n');
  if (!parsedByText.has(text)) {
    if (parsedByText.size >= MAX_CACHED) parsedByText.clear();
    let result: Constraint[] | undefined;
    try {
      result = parseConstraints(constraints);
    } catch {
      // The api refuses malformed constraints; one written past it matches no node, as in swarmkit.
      result = undefined;
    }
    parsedByText.set(text, result);
  }
  return parsedByText.get(text);
}

/** Whether `node` meets every placement constraint, with swarmkit's meaning (`@shoal/constraints`). */
export function meetsConstraints(node: Node, constraints: readonly string[]): boolean {
  if (constraints.length === 0) return true;
  return parsed(constraints)?.every((constraint) => constraint.matches(node)) ?? false;
}
