import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestCertificateAuthority } from '@shoal/testkit';
import { MANAGER_SERVER_NAME } from '../../src/replica/index.js';

/** The built service: real-process tests run exactly what `shoal up` runs. */
export const RAFT_MAIN = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** One `node services/raft/dist/main.js` process with its own data directory and certificate files. */
export class ReplicaProcess {
  #child: ChildProcess | undefined;
  /** The last lines it wrote, for the failure message of a test that needs them. */
  readonly output: string[] = [];
  readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly nodeId: string,
    readonly address: string,
    root: string,
    ca: TestCertificateAuthority,
    joinVia: string | undefined,
  ) {
    if (!existsSync(RAFT_MAIN)) throw new Error(`${RAFT_MAIN} is missing: build services/raft (npx tsc -b) before running its tests`);
    const dir = join(root, nodeId);
    mkdirSync(dir, { recursive: true });
    const identity = ca.issue({ cn: nodeId, ou: 'swarm-manager', o: 'process-cluster', serverNames: [MANAGER_SERVER_NAME, '127.0.0.1'] });
    const file = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content, { mode: 0o600 });
      return path;
    };
    this.env = {
      ...process.env,
      SHOAL_DATA_DIR: join(dir, 'data'),
      SHOAL_RAFT_LISTEN: address,
      SHOAL_RAFT_JOIN: joinVia ?? '',
      SHOAL_TLS_CA: file('ca.pem', identity.caCertPem),
      SHOAL_TLS_CERT: file('node.crt', identity.certPem),
      SHOAL_TLS_KEY: file('node.key', identity.keyPem),
      SHOAL_RAFT_TICK: '50ms',
      SHOAL_NATS_URL: '',
      SHOAL_LOG_LEVEL: 'info',
    };
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the process and resolves once it reports ready over IPC, as `shoal up` waits for it. */
  start(timeoutMs = 30_000): Promise<void> {
    const child = spawn(process.execPath, [RAFT_MAIN], { env: this.env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.#child = child;
    const keep = (chunk: Buffer) => {
      this.output.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
      this.output.splice(0, Math.max(0, this.output.length - 200));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.nodeId} did not report ready:\n${this.output.join('\n')}`)), timeoutMs);
      child.on('message', (message: { type?: string }) => {
        if (message.type !== 'shoal.ready') return;
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${this.nodeId} exited (${code ?? signal}) before it was ready:\n${this.output.join('\n')}`));
      });
    });
  }

  /** SIGKILL: no shutdown, no flush; what is on disk is all that survives. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
}
