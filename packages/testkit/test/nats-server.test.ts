import { existsSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { startNatsServer } from '../src/nats-server.js';

describe('startNatsServer', () => {
  it('starts a real server on a loopback port that a NATS client can round-trip a request through', async () => {
    await using server = await startNatsServer();
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);

    const nc = await connect({ servers: server.url });
    try {
      nc.subscribe('echo', { callback: (_err, msg) => { msg.respond(`echo:${msg.string()}`); } });
      const reply = await nc.request('echo', 'hello', { timeout: 2_000 });
      expect(reply.string()).toBe('echo:hello');
    } finally {
      await nc.close();
    }
  });

  it('stop() makes the server unreachable, and a second stop() is harmless', async () => {
    const server = await startNatsServer();
    await server.stop();

    await expect(connect({ servers: server.url, reconnect: false, timeout: 1_000 })).rejects.toThrow();
    await expect(server.stop()).resolves.toBeUndefined();
  });

  it('with JetStream, serves the JetStream API from a temporary store that stop() removes', async () => {
    const server = await startNatsServer({ jetStream: true });
    const storeDir = server.storeDir;
    try {
      expect(storeDir !== undefined && existsSync(storeDir)).toBe(true);
      const nc = await connect({ servers: server.url });
      try {
        const info = (await nc.request('$JS.API.INFO', '', { timeout: 2_000 })).json<{ type: string; error?: unknown }>();
        expect(info.type).toBe('io.nats.jetstream.api.v1.account_info_response');
        expect(info.error).toBeUndefined();
      } finally {
        await nc.close();
      }
    } finally {
      await server.stop();
    }
    expect(existsSync(storeDir ?? '')).toBe(false);
  });

  it('fails with FAILED_PRECONDITION, pointing at bootstrap, when nats-server is not installed', async () => {
    await expect(startNatsServer({ binary: '/nonexistent/nats-server' })).rejects.toMatchObject({
      code: ErrorCode.FailedPrecondition,
      message: expect.stringContaining('scripts/bootstrap.sh'),
    });
  });

  it('fails with the exit status when the server stops during start-up', async () => {
    await expect(startNatsServer({ binary: '/bin/false' })).rejects.toMatchObject({
      code: ErrorCode.Internal,
      message: expect.stringContaining('stopped during start-up (exit code 1)'),
    });
  });
});
