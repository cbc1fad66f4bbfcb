import { it } from 'vitest';
import { ShoalHost } from './support/shoal-host.js';
import { TranscriptReplayer } from './support/transcript-replay.js';

it('debug', async () => {
  const host = await ShoalHost.start();
  try {
    const r = new TranscriptReplayer(host.baseUrl, { rules: [{ path: /^\/distribution/, action: 404, reason: '' }, { path: /^\/tasks\/[^/]+/, action: 'skip', reason: '' }], fieldExceptions: [], foreign: {} });
    for (const t of ['sw_init_plain_28', 'net_create_28', 'net_create_plain_28', 'sec_create_28', 'sec_create_stdin_28', 'cfg_create_28', 'cfg_create_tmpl_28', 'svc_create_full_28', 'svc_create_28', 'svc_create_global_28', 'svc_update_env_28', 'svc_update_force_28', 'svc_update_replicas_28', 'svc_scale_28', 'svc_update_secret_28', 'svc_update_secret_rm_28', 'svc_update_image_28', 'svc_rollback_28']) {
      const rep = await r.replay(t);
      const s = await r.send('GET', '/v1.41/services/probe_svc_28');
      const spec = (s.json as any)?.Spec?.TaskTemplate;
      console.log(t, rep.mismatches.filter((m) => !m.includes('TLSInfo')).slice(0, 5), JSON.stringify({ sec: spec?.ContainerSpec?.Secrets, net: spec?.Networks, prevSec: (s.json as any)?.PreviousSpec?.TaskTemplate?.ContainerSpec?.Secrets }));
    }
  } finally {
    await host.stop();
  }
}, 120000);
