import { NodeRole, type Node } from '@shoal/proto';

/**
 * Reads a node attribute a constraint key names (key lowercased); an attribute the node lacks reads
 * as `""`, as in swarmkit, so `!=` passes for it.
 */
const attributes: Readonly<Record<string, (node: Node) => string>> = {
  'node.id': (node) => node.id,
  'node.hostname': (node) => node.description?.hostname ?? '',
  'node.role': (node) => (node.role === NodeRole.MANAGER ? 'manager' : 'worker'),
  'node.platform.os': (node) => node.description?.platform?.os ?? '',
  'node.platform.arch': (node) => node.description?.platform?.architecture ?? '',
};

/** Label constraints by prefix: the prefix is case-insensitive, the label name after it is not. */
const labelSources: ReadonlyArray<readonly [string, (node: Node) => Readonly<Record<string, string>> | undefined]> = [
  ['node.labels.', (node) => node.spec?.annotations?.labels],
  ['engine.labels.', (node) => node.description?.engine?.labels],
];

function attributeOf(node: Node, key: string): string | undefined {
  const lowerKey = key.toLowerCase();
  const attribute = attributes[lowerKey];
  if (attribute !== undefined) return attribute(node);
  for (const [prefix, labels] of labelSources) {
    if (lowerKey.startsWith(prefix) && key.length > prefix.length) return labels(node)?.[key.slice(prefix.length)] ?? '';
  }
  return undefined;
}

function matchesConstraint(node: Node, expression: string): boolean {
  const operator = expression.includes('==') ? '==' : expression.includes('!=') ? '!=' : undefined;
  if (operator === undefined) return false;
  const at = expression.indexOf(operator);
  const actual = attributeOf(node, expression.slice(0, at).trim());
  // A key the syntax does not know never matches, with either operator.
  if (actual === undefined) return false;
  const equal = actual.toLowerCase() === expression.slice(at + operator.length).trim().toLowerCase();
  return equal === (operator === '==');
}

/**
 * Whether `node` meets every placement constraint (`key==value` or `key!=value`, values compared
 * ignoring case) with swarmkit's meaning for `node.id`, `node.hostname`, `node.role`,
 * `node.platform.os`, `node.platform.arch`, `node.labels.<name>` and `engine.labels.<name>`. The API
 * validated the syntax when the service was written, so a malformed constraint simply does not match.
 */
export function meetsConstraints(node: Node, constraints: readonly string[]): boolean {
  return constraints.every((expression) => matchesConstraint(node, expression));
}
