import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShoalHost } from './support/shoal-host.js';
import { type FieldException, type ReplayReport, type ReplayRule, TranscriptReplayer, type ValueCheck } from './support/transcript-replay.js';
import { listTranscripts, readTranscript } from './support/transcripts.js';

/*
 * Contract tests: each CLI's recorded sessions with dockerd 20.10, replayed in the order they were
 * recorded against one real Shoal host per CLI (nats-server, raft store, api), expecting dockerd's
 * status, content type, JSON shape and error text for every exchange, and dockerd's values where
 * the replay wrote the same thing (SAME_VALUES). See support/transcript-replay.ts.
 *
 * Everything not compared as recorded is listed, with the reason, in RULES (exchanges skipped or
 * answered differently by design), FIELD_EXCEPTIONS (fields only a real engine, or a component
 * Shoal does not run yet, fills) and foreignFor (objects the recording had and a replay cannot).
 * Recorded tasks are never looked for in Shoal's task lists: only an orchestrator makes tasks.
 * Three preparations make what the recording made between its sessions (createRollbackProbe,
 * applyUnrecordedServiceUpdate, createExternalStackObjects). Transcripts no scenario replays:
 * - v150_*: CLI 28 against a proxy that claimed API 1.50. Shoal serves 1.41, which CLI 28
 *   negotiates down to, so the /v1.50/ paths are refused as too new by design.
 * - t1: a stray copy of ro_info_28 (same body) under a test name.
 * - svc_create_portconflict_20x: needs CLI 28's probe_full_28 to hold the port (a cross-CLI step).
 * - ro_svcinspect_*: inspects only the pre-existing web service.
 * - nd_rm_force_*: the proxy faked removing the only manager, named by an ID prefix only the
 *   recorded node has; dockerd refuses to remove a manager, as nd_rm shows.
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
    field: new RegExp(`${anyEntry}\\.(DriverStatus|Plugins\\.(Log|Volume)|RegistryConfig|Runtimes|SecurityOptions)(\\.|\\[|$)`),
    reason: 'engine facts (storage driver status, log and volume plugins, registries, runtimes, security options): Shoal is a manager, not an engine',
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

/** What the replay writes as dockerd's sessions did, and must read back as dockerd did. */
const SAME_VALUES: ValueCheck[] = [
  { path: /^\/(services|secrets|configs)/, field: new RegExp(`${anyEntry}\\.(Spec|PreviousSpec)$`) },
  // Subnets and VXLAN IDs depend on what else the recorded swarm had allocated (both CLIs' networks).
  { path: /^\/networks/, field: new RegExp(`${anyEntry}\\.(Name|Scope|Driver|EnableIPv6|IPAM\\.Driver|Internal|Attachable|Ingress|ConfigFrom|ConfigOnly|Labels)$`) },
  // Until the replayed (and, in the recording, faked) swarm updates change it.
  { transcripts: /^(sw_init|ro_)/, path: /^\/swarm$/, field: /^\$\.(Spec|DefaultAddrPool|SubnetSize|DataPathPort|RootRotationInProgress)$/ },
  // Except where the proxy rewrote the state (inactive_nodels).
  { transcripts: /^(?!inactive_nodels)/, path: /^\/info$/, field: /^\$\.Swarm\.(LocalNodeState|ControlAvailable|Error|Nodes|Managers)$/ },
  // Except around node updates, which the proxy faked and the replay makes. Not Status.State:
  // READY is the dispatcher's to write once the node's agent holds a session.
  {
    transcripts: /^(?!nd_(update|promote|demote))/,
    path: /^\/nodes/,
    field: new RegExp(`${anyEntry}\\.(Spec|ManagerStatus\\.(Leader|Reachability))$`),
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

/** What a transcript needs that the recording made and did not record. */
type Preparation = (replayer: TranscriptReplayer, cli: Cli) => Promise<void>;

/** A transcript by its name without the CLI suffix, with what it needs prepared first. */
type Step = string | { readonly transcript: string; readonly prepare: Preparation };

const stepName = (step: Step) => (typeof step === 'string' ? step : step.transcript);

function transcriptOf(step: string, cli: Cli): string {
  return step === 'ping' ? `ping${cli}` : `${step}_${cli}`;
}

/** The stored spec of service `name` as a GET in `transcript` (without insertDefaults) answered it. */
function recordedServiceSpec(transcript: string, name: string): unknown {
  const answers = readTranscript(transcript).exchanges.filter(
    (exchange) => exchange.method === 'GET' && exchange.path.startsWith('/services') && exchange.query.get('insertDefaults') !== 'true',
  );
  const services = answers.flatMap((exchange) => exchange.responseBody ?? []) as { Spec?: { Name?: string } }[];
  const service = services.find((candidate) => candidate.Spec?.Name === name);
  if (service === undefined) throw new Error(`${transcript} shows no stored spec of ${name}`);
  return service.Spec;
}

/** probe_rb was made outside the recorded sessions; rb_noprev shows its spec. */
const createRollbackProbe: Preparation = async (replayer) => {
  const spec = recordedServiceSpec('rb_noprev_28', 'probe_rb');
  const answer = await replayer.send('POST', '/v1.41/services/create', spec);
  expect(answer.status).toBe(201);
};

/**
 * probe_svc_<cli> was updated between the recorded sessions (CLI 28's got secret probe_secret2_28
 * and network probe_netp_28 then); the spec svc_ps_filter shows is applied as that update.
 */
const applyUnrecordedServiceUpdate: Preparation = async (replayer, cli) => {
  const name = `probe_svc_${cli}`;
  const current = await replayer.send('GET', `/v1.41/services/${name}`);
  const { ID, Version } = current.json as { ID: string; Version: { Index: number } };
  const spec = replayer.toOurs(recordedServiceSpec(`svc_ps_filter_${cli}`, name));
  const answer = await replayer.send('POST', `/v1.41/services/${ID}/update`, spec, new URLSearchParams({ version: String(Version.Index) }));
  expect(answer.status).toBe(200);
};

/** stk_ext deploys against a network and a secret made outside the recorded sessions. */
const createExternalStackObjects: Preparation = async (replayer) => {
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
      'ro_stackls',
      'ro_svcps',
      'ro_nodeps',
      'task_logs',
    ],
  },
  {
    claim: 'answers node update, promote, demote and rm',
    steps: ['nd_update_avail', 'nd_update_label', 'nd_update_role', 'nd_promote', 'nd_promote_already', 'nd_demote', 'nd_rm', 'nd_rm_id'],
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
    claim: 'answers service update, scale, rollback and logs',
    steps: [
      'svc_update_env',
      'svc_update_force',
      'svc_update_replicas',
      'svc_scale',
      'svc_update_secret',
      'svc_update_secret_rm',
      'svc_update_image',
      'svc_rollback',
      'svc_logs',
      'svc_logs_details',
      'svc_logs_ts',
      'svc_logs_follow',
      'svc_logs_raw',
      { transcript: 'rb_noprev', prepare: createRollbackProbe },
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
      { transcript: 'stk_ext', prepare: createExternalStackObjects },
    ],
  },
  {
    claim: 'answers service inspect, ls and ps with filters, and node ps',
    steps: [
      { transcript: 'svc_inspect_multi', prepare: applyUnrecordedServiceUpdate },
      'svc_ls_filter',
      'svc_ls_filter2',
      'svc_ps_filter',
      'node_ps_filter',
      'svc_inspect_pretty',
      'svcls_nostatus',
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

it('replays only sessions that were recorded, with one CLI at least', () => {
  const steps = SCENARIO.flatMap((group) => group.steps.map(stepName));
  expect(steps.filter((step) => !recorded.has(transcriptOf(step, '28')) && !recorded.has(transcriptOf(step, '20')))).toEqual([]);
});

for (const cli of ['28', '20'] as const) {
  describe(`replayed CLI ${cli} sessions`, () => {
    let host: ShoalHost;
    let replayer: TranscriptReplayer;

    beforeAll(async () => {
      host = await ShoalHost.start();
      replayer = new TranscriptReplayer(host.baseUrl, { rules: RULES, fieldExceptions: FIELD_EXCEPTIONS, foreign: foreignFor(cli), sameValues: SAME_VALUES });
    });

    afterAll(async () => {
      await host?.stop();
    });

    for (const { claim, steps } of SCENARIO) {
      // Some sessions were recorded with CLI 28 only (job_create, svc_rollback, stk_ext …).
      const present = steps.filter((step) => recorded.has(transcriptOf(stepName(step), cli)));
      if (present.length === 0) continue;
      it(`${claim} exactly as dockerd did for CLI ${cli}`, async () => {
        const reports: ReplayReport[] = [];
        for (const step of present) {
          if (typeof step !== 'string') await step.prepare(replayer, cli);
          reports.push(await replayer.replay(transcriptOf(stepName(step), cli)));
        }
        expect(reports.flatMap((report) => report.mismatches.map((mismatch) => `${report.transcript} ${mismatch}`))).toEqual([]);
        // Every transcript contributes: a rule that swallowed one whole would make the claim empty.
        expect(reports.filter((report) => report.replayed.length === 0).map((report) => report.transcript)).toEqual([]);
      });
    }

    it(`needs every rule and field exception it lists for CLI ${cli}`, () => {
      expect(replayer.unused()).toEqual([]);
    });
  });
}
