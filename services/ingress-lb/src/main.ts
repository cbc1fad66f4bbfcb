import { createLogger, idleComponent, loadConfigOrExit, runProcess } from '@shoal/runtime';
import { ingressLbConfig } from './config.js';

const config = loadConfigOrExit(ingressLbConfig, 'ingress-lb');
const log = createLogger({ service: 'ingress-lb', level: config.logLevel });
const placeholder = idleComponent('ingress-lb', 'skeleton: the ingress-lb service arrives with the routing-mesh issue');
await runProcess({ service: 'ingress-lb', log, shutdownGraceMs: config.shutdownGraceMs, components: [placeholder] });
