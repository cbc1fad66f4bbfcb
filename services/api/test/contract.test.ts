import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShoalHost } from './support/shoal-host.js';
import { type FieldException, type ReplayReport, type ReplayRule, TranscriptReplayer } from './support/transcript-replay.js';
import { listTranscripts, readTranscript } from './support/transcripts.js';

/*
 * Contract tests: each CLI's recorded sessions with dockerd 20.10, replayed in the order they were
 * recorded against one real Shoal host (nats-server, raft store, api), expecting dockerd's status,
 * content type, JSON shape and error text for every exchange (see support/transcript-replay.ts).
 *
 * What is not replayed as recorded, and why, is all in the three tables below; everything else is
 * compared in full. Transcripts no scenario replays:
 * - v150_*: CLI 28 against a proxy that claimed API 1.50. Shoal serves 1.41, which CLI 28
 *   negotiates down to, so the /v1.50/ paths are refused as too new by design.
 * - t1: a stray copy of ro_info_28 (same body) under a test name.
 * - svc_create_portconflict_20x: needs CLI 28's probe_full_28 to hold the port (a cross-CLI step).
 */

/** Exchanges that are not replayed as recorded. The first rule matching an exchange decides. */
const RULES: ReplayRule[] = [
  {
    transcripts: /^(?!ping)/,
    method: 'HEAD',
    path: /^\/_ping$/,
    action: 'skip',
    reason: 'every session starts with this same ping; the ping transcripts compare it',
  },
  {
    path: /^\/distribution\//,
    action: 404,
    reason:
      'Shoal resolves no image digests (no registry): it answers 404 where dockerd answered 500 (registry unreachable) or the proxy faked a digest (dist_ok); the CLI warns and goes on either way',
  },
  { path: /^\/tasks\/[^/]+/, action: 'skip', reason: 'names a task: tasks exist once an orchestrator runs, and Shoal runs none yet' },
  { path: /\/logs$/, method: 'GET', transcripts: /follow/, action: 'skip', reason: 'follows logs of tasks that do not exist, which never ends' },
  {
    transcripts: /^sw_init_(ok|autolock|autolock_key)_/,
    path: /^\/swarm\/init$/,
    action: 503,
    reason: 'the proxy faked this init on a swarm that existed; the scenario initialises once (sw_init_plain), so Shoal refuses as dockerd did in sw_init_err',
  },
  {
    transcripts: /^sw_join_ok_/,
    path: /^\/swarm\/join$/,
    action: 503,
    reason: 'the proxy faked this join; the host is in a swarm already, so Shoal refuses as dockerd did in sw_join_err',
  },
  {
    transcripts: /^sw_unlock_ok_/,
    path: /^\/swarm\/unlock$/,
    action: 409,
    reason: 'the proxy faked this unlock (and the locked state /info showed); the swarm is not locked, so Shoal refuses as dockerd did in sw_unlock_locked',
  },
  {
    transcripts: /^(nd_demote|nd_update_role)_/,
    path: /^\/nodes\/[^/]+\/update$/,
    action: 400,
    reason: 'the proxy faked demoting the only manager; swarmkit (and Shoal) refuse to demote the last manager',
  },
  {
    transcripts: /^nd_rm_force_/,
    path: /^\/nodes\//,
    action: 'skip',
    reason: 'the proxy faked removing the manager by an ID prefix only the recorded node has',
  },
  {
    path: /^\/(swarm\/(update|leave)|nodes\/[^/]+\/update)$/,
    method: 'POST',
    transcripts: /^(sw_update|sw_rotate|sw_leave_force|nd_update|nd_promote)/,
    action: 'status',
    reason: 'the proxy answered instead of dockerd (a 200 with an empty text/plain body); only the status is dockerd’s',
  },
];

/** Fields of dockerd's answers that Shoal does not have, and why. */
const anyEntry = String.raw`^\$(?:\[\])?`;
const FIELD_EXCEPTIONS: FieldException[] = [
  {
    path: /^\/info$/,
    field: new RegExp(`${anyEntry}\\.(DriverStatus|Plugins|SystemStatus|GenericResources|RegistryConfig|Runtimes|ContainerdCommit|RuncCommit|InitCommit|SecurityOptions|ProductLicense|DefaultAddressPools|Warnings)(\\.|\\[|$)`),
    reason: 'engine facts (storage driver, plugins, runtimes, registries, security options): Shoal is a manager, not an engine',
  },
  {
    path: /^\/nodes/,
    field: new RegExp(`${anyEntry}\\.Description\\.(Engine\\.Plugins|TLSInfo)(\\.|\\[|$)`),
    reason: 'a node reports its engine’s plugins and its certificate’s issuer itself, through its agent, which Shoal does not run yet',
  },
  {
    path: /^\/version$/,
    field: /^\$\.BuildTime$/,
    reason: 'omitempty in moby’s types.Version, and this Shoal build knows no build time',
  },
  {
    path: /^\/networks\/[^/]+$/,
    field: /^\$\.(Containers|Peers)$/,
    reason: 'the endpoints and gossip peers of an engine with tasks on the network; a manager has none, as dockerd shows for a network without local tasks (net_inspect: Containers null, no Peers)',
  },
  {
    path: /^\/services/,
    field: new RegExp(`${anyEntry}\\.(Endpoint\\.(Ports|VirtualIPs|Spec\\.(Mode|Ports))|UpdateStatus)(\\.|\\[|$)`),
    reason: 'written by the allocator (endpoint ports and VIPs) and the orchestrator (update status), which Shoal does not run yet',
  },
  {
    path: /^\/services\/create$/,
    field: /^\$\.Warnings$/,
    reason: 'only the proxy’s faked create in dist_ok had warnings',
  },
];

type Cli = '28' | '20';

/** Recorded objects a scenario cannot have, by recorded ID or name. */
function foreignFor(cli: Cli): Record<string, string> {
  const other = cli === '28' ? '20' : '28';
  const localNetwork = 'an engine-local network; Shoal serves swarm networks only';
  const otherCli = `CLI ${other}’s, recorded in the same swarm and replayed by the other scenario`;
  const otherProbes = ['net', 'netp', 'secret', 'secret2', 'config', 'configt', 'svc', 'global', 'full', 'job'].map((stem) => [`probe_${stem}_${other}`, otherCli]);
  const otherIds = cli === '28' ? ['lyh8xrfuux147mlls9ftdt40z', 'mxd3sr9xegfj90qeq8ualn62v'] : ['mb6b37cx8ev7fzc0dqbnzg59t', 'jldhf1a7gtj1ix908uasdfccx'];
  return {
    web: 'the service that existed before the recording, which Shoal does not have',
    c5vpwuhrjmwv9jl6v7q0u5f3u: 'the pre-existing web service',
    bridge: localNetwork,
    host: localNetwork,
    none: localNetwork,
    docker_gwbridge: localNetwork,
    ...Object.fromEntries(otherProbes),
    ...Object.fromEntries(otherIds.map((id) => [id, otherCli])),
  };
}

/** A transcript by its name without the CLI suffix, or a setup the recording needs and did not record. */
type Step = string | ((replayer: TranscriptReplayer, cli: Cli) => Promise<void>);

function transcriptOf(step: string, cli: Cli): string {
  return step === 'ping' ? `ping${cli}` : `${step}_${cli}`;
}

/** The recorded spec of a service from a GET in a transcript, to create it before the transcript runs. */
function recordedServiceSpec(transcript: string, path: string): unknown {
  const read = readTranscript(transcript).exchanges.find((exchange) => exchange.method === 'GET' && exchange.path === path);
  return (read?.responseBody as { Spec?: unknown } | undefined)?.Spec;
}

/** probe_rb was made outside the recorded sessions; rb_noprev shows its spec. */
const createRollbackProbe: Step = async (replayer) => {
  const spec = recordedServiceSpec('rb_noprev_28', '/services/probe_rb');
  const answer = await replayer.send('POST', '/v1.41/services/create', spec);
  expect(answer.status).toBe(201);
};

/**
 * probe_svc_<cli> was updated between the recorded sessions (CLI 28's got secret probe_secret2_28
 * and network probe_netp_28 then); the spec svc_inspect_multi shows is applied as that update.
 */
const applyUnrecordedServiceUpdate: Step = async (replayer, cli) => {
  const path = `/services/probe_svc_${cli}`;
  const current = await replayer.send('GET', `/v1.41${path}`);
  const { ID, Version } = current.json as { ID: string; Version: { Index: number } };
  const spec = replayer.toOurs(recordedServiceSpec(`svc_inspect_multi_${cli}`, path));
  const answer = await replayer.send('POST', `/v1.41/services/${ID}/update`, spec, new URLSearchParams({ version: String(Version.Index) }));
  expect(answer.status).toBe(200);
};

/** stk_ext deploys against a network and a secret made outside the recorded sessions. */
const createExternalStackObjects: Step = async (replayer) => {
  const network = await replayer.send('POST', '/v1.41/networks/create', { Name: 'probe_ext', Driver: 'overlay' });
  const secret = await replayer.send('POST', '/v1.41/secrets/create', { Name: 'probe_extsec', Data: Buffer.from('ext').toString('base64') });
  expect([network.status, secret.status]).toEqual([201, 201]);
};

/** Each test replays its steps in order; the state they build carries over to the next test. */
const SCENARIO: { claim: string; steps: Step[] }[] = [
  { claim: 'answers info and swarm unlock on a host in no swarm', steps: ['inactive_info', 'sw_unlock_inactive'] },
  {
    claim: 'answers swarm init, a second init, join and leave',
    steps: ['sw_init_plain', 'sw_init_err', 'sw_init_ok', 'sw_init_autolock', 'sw_init_autolock_key', 'sw_join_err', 'sw_join_ok', 'sw_leave_err'],
  },
  {
    claim: 'answers info, version, node reads, join tokens and the unlock key',
    steps: [
      'ro_info',
      'ro_version',
      'ping',
      'ro_nodels',
      'inactive_nodels',
      'nd_inspect_host',
      'nd_ls_filter',
      'nd_inspect_404',
      'ro_nodeinspect',
      'ro_nodeinspectpretty',
      'ro_jointoken',
      'ro_jointokenq',
      'ro_unlockkey',
      'sw_unlockkey',
      'sw_unlockkey_rotate',
      'sw_unlock_notlocked',
      'sw_unlock_locked',
      'sw_unlock_ok',
      'ro_netinspect',
      'ro_netls',
      'ro_secretls',
      'ro_configls',
      'ro_svcls',
      'ro_svcinspect',
      'ro_stackls',
      'ro_svcps',
      'ro_nodeps',
      'task_logs',
    ],
  },
  {
    claim: 'answers node update, promote, demote and rm',
    steps: ['nd_update_avail', 'nd_update_label', 'nd_update_role', 'nd_promote', 'nd_promote_already', 'nd_demote', 'nd_rm', 'nd_rm_id', 'nd_rm_force'],
  },
  {
    claim: 'answers swarm update, join token rotation and autolock',
    steps: ['sw_update_many', 'sw_update_autolock', 'sw_update_autolock_key', 'sw_rotate', 'sw_update'],
  },
  {
    claim: 'answers network create, inspect and ls, and a duplicate name and a missing network',
    steps: ['net_create', 'net_create_plain', 'net_create_dup', 'net_inspect', 'net_ls', 'net_ls_driver', 'rm_net_404'],
  },
  {
    claim: 'answers secret create, inspect and ls, and a duplicate name and a missing secret',
    steps: ['sec_create', 'sec_create_stdin', 'sec_create_dup', 'sec_inspect', 'sec_inspect_pretty', 'sec_ls', 'rm_secret_404'],
  },
  { claim: 'answers config create, inspect and ls', steps: ['cfg_create', 'cfg_create_tmpl', 'cfg_inspect', 'cfg_inspect_pretty', 'cfg_ls'] },
  {
    claim: 'answers service create (full, replicated, global, job), its progress polls and a duplicate name',
    steps: ['svc_create_full', 'svc_inspect_full', 'svc_ps_full', 'svc_create', 'svc_create_global', 'svc_create_job', 'svc_create_dup', 'dist_ok', 'job_create'],
  },
  {
    claim: 'answers service update, scale and rollback',
    steps: [
      'svc_update_env',
      'svc_update_force',
      'svc_update_replicas',
      'svc_scale',
      'svc_update_secret',
      'svc_update_secret_rm',
      'svc_update_image',
      'svc_rollback',
      createRollbackProbe,
      'rb_noprev',
      'svc_update_rbflag',
    ],
  },
  {
    claim: 'answers stack deploy, services, ps, ls and rm',
    steps: [
      'stk_ps_404',
      'stk_rm_404',
      'stk_services_404',
      'stk_deploy1',
      'stk_deploy2',
      'stk_deploy_prune',
      'stk_deploy_changed',
      'stk_services',
      'stk_ps',
      'stk_ls',
      'stk_rm',
      'stk_deploy_wait',
      'stk_rm_wait',
      createExternalStackObjects,
      'stk_ext',
    ],
  },
  {
    claim: 'answers service inspect, ls and ps with filters, node ps, and service logs',
    steps: [
      applyUnrecordedServiceUpdate,
      'svc_inspect_multi',
      'svc_ls_filter',
      'svc_ls_filter2',
      'svc_ps_filter',
      'node_ps_filter',
      'svc_inspect_pretty',
      'svcls_nostatus',
      'svc_logs',
      'svc_logs_details',
      'svc_logs_ts',
      'svc_logs_follow',
      'svc_logs_raw',
      'svc_inspect_404',
    ],
  },
  {
    claim: 'answers removals: services, networks and secrets in use, then everything, then what is gone',
    steps: ['svc_rm', 'rm_net_inuse', 'rm_secret_inuse', 'rm_svcs', 'rm_net', 'rm_secret', 'rm_config', 'svc_rm_404'],
  },
  { claim: 'answers swarm leave --force', steps: ['sw_leave_force'] },
];

const recorded = new Set(listTranscripts());

for (const cli of ['28', '20'] as const) {
  describe(`replayed CLI ${cli} sessions`, () => {
    let host: ShoalHost;
    let replayer: TranscriptReplayer;

    beforeAll(async () => {
      host = await ShoalHost.start();
      replayer = new TranscriptReplayer(host.baseUrl, { rules: RULES, fieldExceptions: FIELD_EXCEPTIONS, foreign: foreignFor(cli) });
    });

    afterAll(async () => {
      await host?.stop();
    });

    for (const { claim, steps } of SCENARIO) {
      const present = steps.filter((step) => typeof step !== 'string' || recorded.has(transcriptOf(step, cli)));
      if (!present.some((step) => typeof step === 'string')) continue;
      it(`${claim} exactly as dockerd did for CLI ${cli}`, async () => {
        const reports: ReplayReport[] = [];
        for (const step of present) {
          if (typeof step === 'string') reports.push(await replayer.replay(transcriptOf(step, cli)));
          else await step(replayer, cli);
        }
        console.log(reports.flatMap((r) => r.skipped.map((s) => `${r.transcript} ${s}`)).join("\n"));
        expect(reports.flatMap((report) => report.mismatches.map((mismatch) => `${report.transcript} ${mismatch}`))).toEqual([]);
        // Every transcript contributes: a rule that swallowed one whole would make the claim empty.
        expect(reports.filter((report) => report.replayed.length === 0).map((report) => report.transcript)).toEqual([]);
      });
    }
  });
}
