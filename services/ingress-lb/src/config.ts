import { commonSettings, defineConfig } from '@shoal/runtime';

/** Settings of the ingress-lb service, read once in main.ts. Only the common ones until the routing-mesh issue adds its own. */
export const ingressLbConfig = defineConfig({ ...commonSettings });

export type IngressLbConfig = ReturnType<typeof ingressLbConfig.load>;
