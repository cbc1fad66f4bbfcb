import { errors, ShoalError, ErrorCode } from '@shoal/errors';
import { describe, expect, it } from 'vitest';
import { captureLogs } from '../src/testing.js';

describe('createLogger', () => {
  it('writes one JSON object per line with the fixed fields level, time, service, pid and msg', () => {
    const { log, entries } = captureLogs({ service: 'scheduler' });
    log.info({ taskId: 't1', nodeId: 'n1' }, 'task assigned');
    expect(entries).toEqual([
      { level: 'info', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), service: 'scheduler', pid: process.pid, taskId: 't1', nodeId: 'n1', msg: 'task assigned' },
    ]);
  });

  it('carries child logger fields on every line', () => {
    const { log, entries } = captureLogs({ service: 'raft' });
    log.child({ module: 'raft/wal' }).warn({ index: 7n }, 'slow fsync');
    expect(entries[0]).toMatchObject({ service: 'raft', module: 'raft/wal', level: 'warn', index: 7 });
  });

  it('writes bigints exactly, even beyond 2^53', () => {
    const { log, raw } = captureLogs();
    log.info({ term: 2n ** 64n - 1n }, 'term changed');
    expect(raw[0]).toContain('"term":18446744073709551615');
  });

  it('serializes errors with their code, details and cause', () => {
    const { log, entries } = captureLogs();
    const err = new ShoalError(ErrorCode.Conflict, 'stale write', { details: { objectId: 't1' }, cause: new Error('version 3 != 4') });
    log.error({ err }, 'write failed');
    expect(entries[0]?.err).toMatchObject({
      type: 'ShoalError',
      code: 'CONFLICT',
      details: { objectId: 't1' },
      message: 'stale write: version 3 != 4',
      stack: expect.stringContaining('caused by: Error: version 3 != 4'),
    });
  });

  it('redacts secrets at the top level and one level down', () => {
    const { log, raw } = captureLogs();
    log.info({ token: 'SWMTKN-1-abc', request: { joinToken: 'SWMTKN-1-def', name: 'n' } }, 'join');
    log.error({ err: Object.assign(errors.invalidArgument('bad secret'), { secret: 'hunter2' }) }, 'rejected');
    expect(raw.join('\n')).not.toMatch(/SWMTKN|hunter2/);
    expect(raw[0]).toContain('"token":"[redacted]"');
    expect(raw[0]).toContain('"name":"n"');
  });

  it('drops lines below the configured level', () => {
    const { log, entries } = captureLogs({ level: 'warn' });
    log.info('routine');
    log.warn('unusual');
    expect(entries.map((e) => e.msg)).toEqual(['unusual']);
  });
});
