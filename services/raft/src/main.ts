import { createLogger, idleComponent, loadConfigOrExit, runProcess } from '@shoal/runtime';
import { raftConfig } from './config.js';

const config = loadConfigOrExit(raftConfig, 'raft');
const log = createLogger({ service: 'raft', level: config.logLevel });
const placeholder = idleComponent('raft', 'skeleton: the raft service arrives with issue 3 (raft-store)');
await runProcess({ service: 'raft', log, shutdownGraceMs: config.shutdownGraceMs, components: [placeholder] });
