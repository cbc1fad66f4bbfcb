import { BlockList, isIP } from 'node:net';
import { errors } from '@shoal/errors';
import { NodeRole, type Node } from '@shoal/proto';

/** Constraint key prefix naming a label the user set on the node (`docker node update --label-add`). */
const NODE_LABEL_PREFIX = 'node.labels.';
/** Constraint key prefix naming a label of the node's engine (`dockerd --label`). */
const ENGINE_LABEL_PREFIX = 'engine.labels.';

/** The two operators swarmkit accepts, in the order it looks for them in an expression. */
const operators = ['==', '!='] as const;
export type ConstraintOperator = (typeof operators)[number];

// swarmkit's patterns (manager/constraint/constraint.go), with RE2's `\s` spelled out: it is ASCII only.
const keyPattern = /^[a-z_][a-z0-9\-_.]+$/i;
const valuePattern = /^[a-z0-9:\-_\t\n\f\r .*()?+[\]\\^$|/]+$/i;

/** Reads one attribute of a node as a string; an attribute the node lacks reads as `""`, as in swarmkit. */
export type NodeAttribute = (node: Node) => string;

/**
 * The reader for a `node.labels.<name>` or `engine.labels.<name>` key, or undefined for any other key.
 * The prefix is case-insensitive; the label name after it is not. Placement preferences name labels
 * the same way.
 */
export function labelAttribute(key: string): NodeAttribute | undefined {
  if (hasPrefix(key, NODE_LABEL_PREFIX)) {
    const label = key.slice(NODE_LABEL_PREFIX.length);
    return (node) => node.spec?.annotations?.labels[label] ?? '';
  }
  if (hasPrefix(key, ENGINE_LABEL_PREFIX)) {
    const label = key.slice(ENGINE_LABEL_PREFIX.length);
    return (node) => node.description?.engine?.labels[label] ?? '';
  }
  return undefined;
}

function hasPrefix(key: string, prefix: string): boolean {
  return key.length > prefix.length && key.slice(0, prefix.length).toLowerCase() === prefix;
}

/** The role as the constraint syntax spells it (Go's `NodeRole.String()`, compared case-insensitively). */
function roleName(role: NodeRole): string {
  if (role === NodeRole.MANAGER) return 'manager';
  if (role === NodeRole.WORKER) return 'worker';
  return String(role);
}

/** The attributes a constraint key can name besides labels and `node.ip`, by lowercased key. */
const attributes: Readonly<Record<string, NodeAttribute>> = {
  'node.id': (node) => node.id,
  'node.hostname': (node) => node.description?.hostname ?? '',
  'node.role': (node) => roleName(node.role),
  'node.platform.os': (node) => node.description?.platform?.os ?? '',
  'node.platform.arch': (node) => node.description?.platform?.architecture ?? '',
};

/**
 * One parsed placement constraint, `key==value` or `key!=value`. Values compare case-insensitively.
 * A key the syntax does not know never matches (with either operator), and neither does a `node.ip`
 * value that is not an address or CIDR block; a node lacking the attribute matches as `""`.
 */
export interface Constraint {
  readonly key: string;
  readonly operator: ConstraintOperator;
  readonly value: string;
  /** Whether `node` satisfies this constraint. */
  readonly matches: (node: Node) => boolean;
}

function constraint(key: string, operator: ConstraintOperator, value: string): Constraint {
  const wanted = operator === '==';
  const lowerKey = key.toLowerCase();
  if (lowerKey === 'node.ip') {
    const contains = addressMatcher(value);
    const matches = contains === undefined ? () => false : (node: Node) => contains(node.status?.addr ?? '') === wanted;
    return { key, operator, value, matches };
  }
  const attribute = attributes[lowerKey] ?? labelAttribute(key);
  if (attribute === undefined) return { key, operator, value, matches: () => false };
  const expected = value.toLowerCase();
  return { key, operator, value, matches: (node) => (attribute(node).toLowerCase() === expected) === wanted };
}

/**
 * Parses placement constraints as swarmkit does, throwing an INVALID_ARGUMENT ShoalError with
 * swarmkit's message for the first malformed one: `key 'x' is invalid`, `value 'x' is invalid`, or
 * `constraint expected one operator from ==, !=`.
 */
export function parseConstraints(expressions: readonly string[]): Constraint[] {
  return expressions.map((expression) => {
    const operator = operators.find((candidate) => expression.includes(candidate));
    if (operator === undefined) {
      throw errors.invalidArgument(`constraint expected one operator from ${operators.join(', ')}`, { constraint: expression });
    }
    const at = expression.indexOf(operator);
    const key = expression.slice(0, at).trim();
    if (!keyPattern.test(key)) throw errors.invalidArgument(`key '${key}' is invalid`, { constraint: expression });
    const value = expression.slice(at + operator.length).trim();
    if (!valuePattern.test(value)) throw errors.invalidArgument(`value '${value}' is invalid`, { constraint: expression });
    return constraint(key, operator, value);
  });
}

/**
 * A test for `node.ip` values: a single address (equal to the node's, IPv4-mapped forms included) or
 * a CIDR block containing it; undefined when the value is neither.
 */
function addressMatcher(value: string): ((address: string) => boolean) | undefined {
  const list = new BlockList();
  const family = isIP(value);
  if (family !== 0) {
    list.addAddress(value, family === 4 ? 'ipv4' : 'ipv6');
  } else {
    const slash = value.indexOf('/');
    if (slash < 0) return undefined;
    const network = value.slice(0, slash);
    const networkFamily = isIP(network);
    const prefixText = value.slice(slash + 1);
    if (networkFamily === 0 || !/^\d+$/.test(prefixText) || Number(prefixText) > (networkFamily === 4 ? 32 : 128)) return undefined;
    list.addSubnet(network, Number(prefixText), networkFamily === 4 ? 'ipv4' : 'ipv6');
  }
  return (address) => {
    const addressFamily = isIP(address);
    return addressFamily !== 0 && list.check(address, addressFamily === 4 ? 'ipv4' : 'ipv6');
  };
}
