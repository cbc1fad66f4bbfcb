import { createLogger, idleComponent, loadConfigOrExit, runProcess } from '@shoal/runtime';
import { dispatcherConfig } from './config.js';

const config = loadConfigOrExit(dispatcherConfig, 'dispatcher');
const log = createLogger({ service: 'dispatcher', level: config.logLevel });
const placeholder = idleComponent('dispatcher', 'skeleton: the dispatcher service arrives with issue 6 (nodes)');
await runProcess({ service: 'dispatcher', log, shutdownGraceMs: config.shutdownGraceMs, components: [placeholder] });
