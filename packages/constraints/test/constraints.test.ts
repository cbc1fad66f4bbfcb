import { ErrorCode } from '@shoal/errors';
import { NodeRole } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { parseConstraints } from '../src/index.js';
import { failure } from '@shoal/testkit';
import { node } from './fixtures.js';

const worker = node('node-1', {
  role: NodeRole.WORKER,
  status: { addr: '10.0.3.7' },
  spec: { annotations: { labels: { zone: 'East', 'Disk.Type': 'ssd' } } },
  description: { hostname: 'web-01', platform: { os: 'linux', architecture: 'x86_64' }, engine: { labels: { provider: 'aws' } } },
});

const matches = (expression: string) => parseConstraints([expression])[0]?.matches(worker);

describe('parseConstraints', () => {
  it('splits key, operator and value, trimming the spaces around them', () => {
    const [constraint] = parseConstraints([' node.labels.zone  !=  east ']);
    expect(constraint).toMatchObject({ key: 'node.labels.zone', operator: '!=', value: 'east' });
  });

  it.each([
    ['zone=east', 'constraint expected one operator from ==, !='],
    ['node.labels.zone>east', 'constraint expected one operator from ==, !='],
    ['==east', "key '' is invalid"],
    ['x==east', "key 'x' is invalid"],
    ['node labels==east', "key 'node labels' is invalid"],
    ['node.labels.zone==', "value '' is invalid"],
    ['node.labels.zone==east;west', "value 'east;west' is invalid"],
    // swarmkit looks for "==" first, so the "!=" ends up in the key.
    ['a!=b==c', "key 'a!=b' is invalid"],
  ])('rejects %j with INVALID_ARGUMENT and swarmkit\'s message "%s"', (expression, message) => {
    expect(failure(() => parseConstraints([expression]))).toEqual({ code: ErrorCode.InvalidArgument, message });
  });

  it('rejects a list at its first malformed constraint', () => {
    expect(failure(() => parseConstraints(['node.role==worker', 'bad', '==x'])).message).toBe('constraint expected one operator from ==, !=');
  });

  it('accepts the punctuation swarmkit allows in values: regex-like characters, slashes, colons and inner spaces', () => {
    expect(parseConstraints(['node.labels.expr==a.b*(c)?+[d]\\^$|/e:f g-h_i']).map(({ value }) => value)).toEqual([
      'a.b*(c)?+[d]\\^$|/e:f g-h_i',
    ]);
  });
});

describe('Constraint.matches', () => {
  it.each([
    ['node.id==node-1', true],
    ['node.id!=node-1', false],
    ['NODE.ID==NODE-1', true],
    ['node.hostname==web-01', true],
    ['node.hostname!=web-02', true],
    ['node.role==worker', true],
    ['node.role==Worker', true],
    ['node.role==manager', false],
    ['node.platform.os==linux', true],
    ['node.platform.arch==x86_64', true],
    ['node.platform.arch==amd64', false],
    ['node.labels.zone==east', true],
    ['node.labels.zone!=east', false],
    ['NODE.LABELS.zone==EAST', true],
    ['node.labels.Disk.Type==ssd', true],
    ['node.labels.disk.type==ssd', false],
    ['engine.labels.provider==aws', true],
    ['engine.labels.provider!=gcp', true],
    ['node.ip==10.0.3.7', true],
    ['node.ip!=10.0.3.7', false],
    ['node.ip==10.0.0.0/16', true],
    ['node.ip!=10.0.0.0/16', false],
    ['node.ip==10.1.0.0/16', false],
    ['node.ip==::ffff:10.0.3.7', true],
  ])('%s is %s for a worker labelled zone=East', (expression, expected) => {
    expect(matches(expression)).toBe(expected);
  });

  it('treats a label or attribute the node lacks as "", so == fails and != passes', () => {
    expect([matches('node.labels.rack==r1'), matches('node.labels.rack!=r1'), matches('engine.labels.gpu!=yes')]).toEqual([false, true, true]);
    const bare = node('bare', { description: undefined, status: undefined });
    const [hostnameIsSet, osIsNotLinux] = parseConstraints(['node.hostname==web-01', 'node.platform.os!=linux']);
    expect([hostnameIsSet?.matches(bare), osIsNotLinux?.matches(bare)]).toEqual([false, true]);
  });

  it('never matches a key outside the syntax, whichever the operator', () => {
    expect([matches('node.color==red'), matches('node.color!=red'), matches('labels.zone!=east')]).toEqual([false, false, false]);
  });

  it('never matches a node.ip value that is neither an address nor a CIDR block', () => {
    expect([matches('node.ip==10.0.3'), matches('node.ip!=10.0.3'), matches('node.ip!=10.0.0.0/99')]).toEqual([false, false, false]);
  });
});
