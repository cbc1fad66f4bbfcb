import { ErrorCode } from '@shoal/errors';
import { describe, expect, it } from 'vitest';
import { agentConfig } from '../src/config.js';

describe('the agent configuration', () => {
  it('puts the control socket in the data directory unless told otherwise', () => {
    const config = agentConfig.load({ SHOAL_DATA_DIR: '/var/lib/shoal/node-2' });

    expect(config.socket).toBe('/var/lib/shoal/node-2/agent.sock');
    expect(config.join).toBeUndefined();
    expect(config.containerLabels).toEqual({});
  });

  it('reads node and container labels as k=v,k=v', () => {
    const config = agentConfig.load({ SHOAL_NODE_LABELS: 'zone=a, disk=ssd', SHOAL_CONTAINER_LABELS: 'shoal.test=run-1' });

    expect(config.nodeLabels).toEqual({ zone: 'a', disk: 'ssd' });
    expect(config.containerLabels).toEqual({ 'shoal.test': 'run-1' });
  });

  it('refuses a label without a key, naming the variable', () => {
    expect(() => agentConfig.load({ SHOAL_NODE_LABELS: 'zone=a,=b' })).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument, message: 'SHOAL_NODE_LABELS: "=b" is not key=value' }));
  });

  it('joins at start only with both a token and a manager address', () => {
    expect(agentConfig.load({ SHOAL_JOIN_TOKEN: 'SWMTKN-1-x', SHOAL_JOIN_ADDR: '10.0.0.1:2377' }).join).toEqual({ token: 'SWMTKN-1-x', address: '10.0.0.1:2377' });
    expect(() => agentConfig.load({ SHOAL_JOIN_TOKEN: 'SWMTKN-1-x' })).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
  });
});
