import { createLogger, idleComponent, loadConfigOrExit, runProcess } from '@shoal/runtime';
import { allocatorConfig } from './config.js';

const config = loadConfigOrExit(allocatorConfig, 'allocator');
const log = createLogger({ service: 'allocator', level: config.logLevel });
const placeholder = idleComponent('allocator', 'skeleton: the allocator service arrives with issue 5 (control loops)');
await runProcess({ service: 'allocator', log, shutdownGraceMs: config.shutdownGraceMs, components: [placeholder] });
