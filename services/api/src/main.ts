import { createLogger, idleComponent, loadConfigOrExit, runProcess } from '@shoal/runtime';
import { apiConfig } from './config.js';

const config = loadConfigOrExit(apiConfig, 'api');
const log = createLogger({ service: 'api', level: config.logLevel });
const placeholder = idleComponent('api', 'skeleton: the api service arrives with issue 4 (api)');
await runProcess({ service: 'api', log, shutdownGraceMs: config.shutdownGraceMs, components: [placeholder] });
