import { resolve } from 'node:path';
import { ErrorCode, hasCode, type ShoalError } from '@shoal/errors';
import { describe, expect, it } from 'vitest';
import { commonSettings, defineConfig, formatDurationMs, parseDurationMs, setting } from '../src/index.js';

const config = defineConfig({
  ...commonSettings,
  port: setting.int('SHOAL_TEST_PORT', 2377, 'API port', { min: 1, max: 65535 }),
  listen: setting.hostPort('SHOAL_TEST_LISTEN', '127.0.0.1:4242', 'gRPC listen address'),
  natsUrl: setting.url('SHOAL_TEST_NATS_URL', 'nats://127.0.0.1:4222', 'NATS server'),
  dataDir: setting.path('SHOAL_TEST_DATA_DIR', 'data', 'Where state is kept'),
  debugRaft: setting.boolean('SHOAL_TEST_DEBUG_RAFT', false, 'Log every raft message'),
  advertise: setting.optionalString('SHOAL_TEST_ADVERTISE', 'Address other managers use'),
  nodeName: setting.string('SHOAL_TEST_NODE_NAME', 'node-1', 'This host in `docker node ls`'),
});

function loadError(env: NodeJS.ProcessEnv): ShoalError {
  try {
    config.load(env);
  } catch (err) {
    if (hasCode(err, ErrorCode.InvalidArgument)) return err;
    throw err;
  }
  throw new Error('load succeeded');
}

describe('defineConfig', () => {
  it('applies every default when the environment sets nothing, or sets empty strings', () => {
    const expected = {
      logLevel: 'info',
      shutdownGraceMs: 10_000,
      port: 2377,
      listen: '127.0.0.1:4242',
      natsUrl: 'nats://127.0.0.1:4222',
      dataDir: resolve('data'),
      debugRaft: false,
      advertise: undefined,
      nodeName: 'node-1',
    };
    expect(config.load({})).toEqual(expected);
    expect(config.load({ SHOAL_TEST_PORT: '', SHOAL_LOG_LEVEL: '  ' })).toEqual(expected);
  });

  it('reads values of every kind from the environment', () => {
    expect(
      config.load({
        SHOAL_LOG_LEVEL: 'debug',
        SHOAL_SHUTDOWN_GRACE: '1.5m',
        SHOAL_TEST_PORT: '8080',
        SHOAL_TEST_LISTEN: '[::1]:0',
        SHOAL_TEST_NATS_URL: 'nats://nats.internal:4223',
        SHOAL_TEST_DATA_DIR: '/var/lib/shoal',
        SHOAL_TEST_DEBUG_RAFT: 'YES',
        SHOAL_TEST_ADVERTISE: '10.0.0.7:4242',
        SHOAL_TEST_NODE_NAME: 'edge',
      }),
    ).toEqual({
      logLevel: 'debug',
      shutdownGraceMs: 90_000,
      port: 8080,
      listen: '[::1]:0',
      natsUrl: 'nats://nats.internal:4223',
      dataDir: '/var/lib/shoal',
      debugRaft: true,
      advertise: '10.0.0.7:4242',
      nodeName: 'edge',
    });
  });

  it('reports every invalid setting in one INVALID_ARGUMENT error, one line each, with the value and the rule', () => {
    const err = loadError({
      SHOAL_LOG_LEVEL: 'loud',
      SHOAL_SHUTDOWN_GRACE: '5 parsecs',
      SHOAL_TEST_PORT: '70000',
      SHOAL_TEST_LISTEN: 'localhost',
      SHOAL_TEST_NATS_URL: 'not a url',
      SHOAL_TEST_DEBUG_RAFT: 'maybe',
    });
    expect(err.message).toBe(
      [
        'invalid configuration:',
        '  SHOAL_LOG_LEVEL=loud: must be one of fatal, error, warn, info, debug, trace, silent',
        '  SHOAL_SHUTDOWN_GRACE=5 parsecs: must be a duration such as 500ms, 5s, 1m, 2h or a number of milliseconds',
        '  SHOAL_TEST_PORT=70000: must be an integer between 1 and 65535',
        '  SHOAL_TEST_LISTEN=localhost: must be host:port with a port between 0 and 65535',
        '  SHOAL_TEST_NATS_URL=not a url: must be an absolute URL such as nats://127.0.0.1:4222',
        '  SHOAL_TEST_DEBUG_RAFT=maybe: must be one of true, false, 1, 0, yes, no, on, off',
      ].join('\n'),
    );
    expect(Object.keys(err.details)).toEqual([
      'SHOAL_LOG_LEVEL',
      'SHOAL_SHUTDOWN_GRACE',
      'SHOAL_TEST_PORT',
      'SHOAL_TEST_LISTEN',
      'SHOAL_TEST_NATS_URL',
      'SHOAL_TEST_DEBUG_RAFT',
    ]);
  });

  it.each([
    ['3.5', 'must be an integer between 1 and 65535'],
    ['0x10', 'must be an integer between 1 and 65535'],
    ['0', 'must be an integer between 1 and 65535'],
  ])('rejects the port %s', (raw, problem) => {
    expect(loadError({ SHOAL_TEST_PORT: raw }).details).toEqual({ SHOAL_TEST_PORT: problem });
  });

  it('states one-sided integer bounds as such', () => {
    const workers = defineConfig({ workers: setting.int('SHOAL_TEST_WORKERS', 4, 'workers', { min: 1 }) });
    expect(() => workers.load({ SHOAL_TEST_WORKERS: '0' })).toThrow('SHOAL_TEST_WORKERS=0: must be an integer >= 1');
  });

  it('describes every setting with its variable, default as written in the environment, and documentation', () => {
    const described = config.describe();
    expect(described.map((d) => d.env)).toEqual([
      'SHOAL_LOG_LEVEL',
      'SHOAL_SHUTDOWN_GRACE',
      'SHOAL_TEST_PORT',
      'SHOAL_TEST_LISTEN',
      'SHOAL_TEST_NATS_URL',
      'SHOAL_TEST_DATA_DIR',
      'SHOAL_TEST_DEBUG_RAFT',
      'SHOAL_TEST_ADVERTISE',
      'SHOAL_TEST_NODE_NAME',
    ]);
    expect(described[1]).toEqual({ env: 'SHOAL_SHUTDOWN_GRACE', default: '10s', doc: expect.stringContaining('SIGTERM') });
    expect(described[2]).toEqual({ env: 'SHOAL_TEST_PORT', default: '2377', doc: 'API port' });
    expect(described[7]).toEqual({ env: 'SHOAL_TEST_ADVERTISE', default: '', doc: 'Address other managers use' });
  });

  it('refuses a definition that reads the same variable twice', () => {
    expect(() =>
      defineConfig({
        a: setting.string('SHOAL_TEST_SAME', 'x', 'a'),
        b: setting.string('SHOAL_TEST_SAME', 'y', 'b'),
      }),
    ).toThrow(/reads SHOAL_TEST_SAME twice/);
  });
});

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5_000],
    ['1m', 60_000],
    ['2h', 7_200_000],
    ['250', 250],
    ['0.5s', 500],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', 's', '-5s', '5 s', '5d', '1e3'])('does not read %j as a duration', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });

  it.each([
    [10_000, '10s'],
    [1_500, '1500ms'],
    [120_000, '2m'],
    [3_600_000, '1h'],
    [0, '0ms'],
  ])('writes %d ms as %s', (ms, text) => {
    expect(formatDurationMs(ms)).toBe(text);
  });
});
