import { createLogger, idleComponent, loadConfigOrExit, runProcess } from '@shoal/runtime';
import { schedulerConfig } from './config.js';

const config = loadConfigOrExit(schedulerConfig, 'scheduler');
const log = createLogger({ service: 'scheduler', level: config.logLevel });
const placeholder = idleComponent('scheduler', 'skeleton: the scheduler service arrives with issue 5 (control loops)');
await runProcess({ service: 'scheduler', log, shutdownGraceMs: config.shutdownGraceMs, components: [placeholder] });
