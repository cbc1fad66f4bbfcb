import { createLogger, idleComponent, loadConfigOrExit, runProcess } from '@shoal/runtime';
import { orchestratorConfig } from './config.js';

const config = loadConfigOrExit(orchestratorConfig, 'orchestrator');
const log = createLogger({ service: 'orchestrator', level: config.logLevel });
const placeholder = idleComponent('orchestrator', 'skeleton: the orchestrator service arrives with issue 5 (control loops)');
await runProcess({ service: 'orchestrator', log, shutdownGraceMs: config.shutdownGraceMs, components: [placeholder] });
