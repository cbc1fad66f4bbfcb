import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MANAGER_SERVER_NAME } from '@shoal/pki';
import { createStoreClient, type StoreApiClient } from '@shoal/store-client';
import { createTestPki, freeLoopbackPort, ServiceProcess, startNatsServer, writeManagerIdentity, type NatsServer } from '@shoal/testkit';

const mainOf = (service: string) => fileURLToPath(new URL(`../../../${service}/dist/main.js`, import.meta.url));

/** One process of the host, started like `shoal up` starts it: ready when it says so over IPC. */
function startService(name: string, env: NodeJS.ProcessEnv, logFile: string): Promise<ServiceProcess> {
  const main = mainOf(name);
  if (!existsSync(main)) throw new Error(`${main} is missing: build the workspace (npx turbo run build) first`);
  return ServiceProcess.start(name, main, env, logFile);
}

/**
 * A manager host as `shoal up` runs it, minus the services the API does not need: a real
 * nats-server, a raft-store replica and the api, each its own process, on free loopback ports,
 * with a throw-away PKI and data directories removed by `stop()`.
 */
export class ShoalHost implements AsyncDisposable {
  private constructor(
    readonly root: string,
    readonly dockerHost: string,
    readonly socketPath: string,
    readonly raftDataDir: string,
    readonly apiDataDir: string,
    /** The manager identity and the raft replica's address, for a test that writes to the store as another component would. */
    readonly store: { readonly address: string; readonly tls: { ca: string; cert: string; key: string } },
    private readonly children: ServiceProcess[],
    private readonly nats: NatsServer,
    private readonly raftStart: { env: NodeJS.ProcessEnv; logFile: string },
  ) {}

  /** Stops the raft replica (SIGTERM) and starts it again on the same data, as a host restart would. */
  async restartRaft(): Promise<void> {
    await this.children[0]?.stop();
    this.children[0] = await startService('raft', this.raftStart.env, this.raftStart.logFile);
  }

  /** A Store API client with the host's manager identity; close it when done. */
  storeClient(): StoreApiClient {
    const { ca, cert, key } = this.store.tls;
    return createStoreClient({
      address: this.store.address,
      tls: { ca: readFileSync(ca), cert: readFileSync(cert), key: readFileSync(key) },
      serverName: MANAGER_SERVER_NAME,
    });
  }

  /**
   * Starts the host. With `apiTls`, the API's TCP listener speaks HTTPS and requires client
   * certificates from the test CA; `clientCertDir` then holds a client identity in the layout the
   * docker CLI reads (`DOCKER_CERT_PATH`: ca.pem, cert.pem, key.pem).
   */
  static async start(options: { apiTls?: boolean } = {}): Promise<ShoalHost> {
    const root = mkdtempSync(join(tmpdir(), 'shoal-api-test-'));
    const nats = await startNatsServer();
    const children: ServiceProcess[] = [];
    try {
      const { ca } = createTestPki();
      const file = (name: string, content: string) => {
        const path = join(root, name);
        writeFileSync(path, content, { mode: 0o600 });
        return path;
      };
      const tls = writeManagerIdentity(ca, root, 'api-test-manager').env;
      const raftPort = await freeLoopbackPort();
      const common = { ...process.env, ...tls, SHOAL_NATS_URL: nats.url, SHOAL_LOG_LEVEL: 'info' };
      const raftDataDir = join(root, 'raft');
      const raftStart = {
        env: { ...common, SHOAL_DATA_DIR: raftDataDir, SHOAL_RAFT_LISTEN: `127.0.0.1:${raftPort}`, SHOAL_RAFT_TICK: '100ms' },
        logFile: join(root, 'raft.log'),
      };
      const raft = await startService('raft', raftStart.env, raftStart.logFile);
      children.push(raft);
      const apiDataDir = join(root, 'api');
      const socketPath = join(root, 'docker.sock');
      const apiTlsEnv: NodeJS.ProcessEnv = {};
      if (options.apiTls === true) {
        const server = ca.issue({ cn: 'shoal-api', ou: 'swarm-manager', o: 'api-test', serverNames: ['127.0.0.1', 'localhost'] });
        const client = ca.issue({ cn: 'docker-cli', ou: 'swarm-manager', o: 'api-test' });
        apiTlsEnv.SHOAL_API_TLS_CA = file('api-ca.pem', server.caCertPem);
        apiTlsEnv.SHOAL_API_TLS_CERT = file('api.crt', server.certPem);
        apiTlsEnv.SHOAL_API_TLS_KEY = file('api.key', server.keyPem);
        mkdirSync(join(root, 'client'));
        file('client/ca.pem', client.caCertPem);
        file('client/cert.pem', client.certPem);
        file('client/key.pem', client.keyPem);
      }
      const api = await startService(
        'api',
        {
          ...common,
          SHOAL_DATA_DIR: apiDataDir,
          SHOAL_STORE_ADDRESS: `127.0.0.1:${raftPort}`,
          SHOAL_MANAGER_PORT: String(raftPort),
          SHOAL_API_LISTEN: '127.0.0.1:0',
          SHOAL_API_SOCKET: socketPath,
          ...apiTlsEnv,
        },
        join(root, 'api.log'),
      );
      children.push(api);
      const dockerHost = api.endpoints['docker'];
      if (dockerHost === undefined) throw new Error('the api reported ready without a docker endpoint');
      const store = { address: `127.0.0.1:${raftPort}`, tls: { ca: tls.SHOAL_TLS_CA, cert: tls.SHOAL_TLS_CERT, key: tls.SHOAL_TLS_KEY } };
      return new ShoalHost(root, dockerHost, socketPath, raftDataDir, apiDataDir, store, children, nats, raftStart);
    } catch (err) {
      await Promise.all(children.map((child) => child.stop()));
      await nats.stop();
      rmSync(root, { recursive: true, force: true });
      throw err;
    }
  }

  /** With `apiTls`: the docker CLI's client identity (DOCKER_CERT_PATH). */
  get clientCertDir(): string {
    return join(this.root, 'client');
  }

  /** The nats-server the host's processes use. */
  get natsUrl(): string {
    return this.nats.url;
  }

  /** `http://127.0.0.1:port` of the TCP endpoint, for fetch. */
  get baseUrl(): string {
    return this.dockerHost.replace(/^tcp:/, 'http:');
  }

  apiLog(): string {
    return readFileSync(join(this.root, 'api.log'), 'utf8');
  }

  async stop(): Promise<void> {
    await Promise.all([...this.children].reverse().map((child) => child.stop()));
    await this.nats.stop();
    rmSync(this.root, { recursive: true, force: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
