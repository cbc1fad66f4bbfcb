import { createLogger, idleComponent, loadConfigOrExit, runProcess } from '@shoal/runtime';
import { agentConfig } from './config.js';

const config = loadConfigOrExit(agentConfig, 'agent');
const log = createLogger({ service: 'agent', level: config.logLevel });
const placeholder = idleComponent('agent', 'skeleton: the agent service arrives with issue 6 (nodes)');
await runProcess({ service: 'agent', log, shutdownGraceMs: config.shutdownGraceMs, components: [placeholder] });
