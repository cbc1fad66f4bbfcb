import { NodeRole } from '@shoal/proto';
import { describe, expect, it } from 'vitest';
import { meetsConstraints } from '../src/constraints.js';
import { node } from './support/harness.js';

const worker = node('node-1', {
  role: NodeRole.WORKER,
  spec: { annotations: { labels: { zone: 'East', Disk: 'ssd' } } },
  description: { hostname: 'host-1', platform: { os: 'linux', architecture: 'x86_64' }, engine: { labels: { gpu: 'yes' } } },
});

describe('placement constraints', () => {
  it.each([
    ['node.id==node-1', true],
    ['node.id!=node-1', false],
    ['node.hostname==HOST-1', true],
    ['node.role==worker', true],
    ['node.role==manager', false],
    ['node.role!=manager', true],
    ['node.platform.os==linux', true],
    ['node.platform.arch==x86_64', true],
    ['node.platform.arch!=x86_64', false],
    ['node.labels.zone==east', true],
    ['node.labels.zone != west', true],
    ['NODE.LABELS.Disk==ssd', true],
    ['node.labels.disk==ssd', false],
    ['node.labels.rack!=r1', true],
    ['node.labels.rack==r1', false],
    ['engine.labels.gpu==yes', true],
    ['engine.labels.gpu==no', false],
    ['node.unknown==x', false],
    ['node.unknown!=x', false],
    ['node.id', false],
  ])('evaluates %s as %s', (constraint, expected) => {
    expect(meetsConstraints(worker, [constraint])).toBe(expected);
  });

  it('requires every constraint of a list, and an empty list matches any node', () => {
    expect(meetsConstraints(worker, ['node.role==worker', 'node.labels.zone==east'])).toBe(true);
    expect(meetsConstraints(worker, ['node.role==worker', 'node.labels.zone==west'])).toBe(false);
    expect(meetsConstraints(worker, [])).toBe(true);
  });
});
