import { errors } from '@shoal/errors';
import { Config, newId, Secret, type ConfigSpec, type SecretSpec } from '@shoal/proto';
import { byReferencedConfigId, byReferencedSecretId, type Change, type ReadTx, type Selector } from '@shoal/store';
import { commit, createNamed, managerRead, requireManager, type ApiContext } from '../cluster/context.js';
import { resolve } from '../cluster/resolve.js';
import { configSpecFromDocker, configToDocker, requireOnlyLabelsChanged as requireConfigLabelsOnly } from '../convert/config.js';
import { requireOnlyLabelsChanged as requireSecretLabelsOnly, secretSpecFromDocker, secretToDocker } from '../convert/secret.js';
import { parseFilters } from '../http/filters.js';
import type { Router } from '../http/router.js';
import { requireCurrent, requiredBody, requiredVersion } from './request-rules.js';

/** What differs between `/secrets` and `/configs`; the routes are otherwise the same. */
interface PayloadKind<K extends 'secret' | 'config', O extends Secret | Config, S extends SecretSpec | ConfigSpec> {
  readonly kind: K;
  readonly decode: (body: unknown) => S;
  readonly toDocker: (object: O) => unknown;
  readonly build: (id: string, spec: S) => O;
  readonly requireOnlyLabelsChanged: (held: S, requested: S) => void;
  readonly referencedBy: (id: string) => Selector;
}

const secretKind: PayloadKind<'secret', Secret, SecretSpec> = {
  kind: 'secret',
  decode: secretSpecFromDocker,
  toDocker: secretToDocker,
  build: (id, spec) => Secret.fromPartial({ id, spec }),
  requireOnlyLabelsChanged: requireSecretLabelsOnly,
  referencedBy: byReferencedSecretId,
};

const configKind: PayloadKind<'config', Config, ConfigSpec> = {
  kind: 'config',
  decode: configSpecFromDocker,
  toDocker: configToDocker,
  build: (id, spec) => Config.fromPartial({ id, spec }),
  requireOnlyLabelsChanged: requireConfigLabelsOnly,
  referencedBy: byReferencedConfigId,
};

/** Refuses removing a secret or config a service still uses, naming the services as swarmkit does. */
function requireUnused(tx: ReadTx, kind: 'secret' | 'config', name: string, selector: Selector): void {
  const users = tx.find('service', selector).map((service) => service.spec?.annotations?.name ?? service.id);
  if (users.length === 0) return;
  const noun = users.length === 1 ? 'service' : 'services';
  throw errors.invalidArgument(`${kind} '${name}' is in use by the following ${noun}: ${users.sort().join(', ')}`);
}

function payloadRoutes<K extends 'secret' | 'config', O extends Secret | Config, S extends SecretSpec | ConfigSpec>(
  router: Router,
  context: ApiContext,
  payload: PayloadKind<K, O, S>,
): void {
  const { kind } = payload;
  const base = `/${kind}s`;
  const findOne = (input: string) => managerRead(context, (tx) => resolve(tx, kind, input) as O);

  router.on('POST', `${base}/create`, async ({ body }) => {
    await requireManager(context);
    const spec = payload.decode(requiredBody(body));
    const object = payload.build(newId(), spec);
    const name = spec.annotations?.name ?? '';
    await createNamed(context, { action: 'create', kind, object } as Change & { action: 'create' }, () => errors.alreadyExists(`${kind} ${name} already exists`));
    return { status: 201, json: { ID: object.id } };
  });

  router.on('GET', base, async ({ query }) => {
    const filters = parseFilters(query.get('filters'));
    filters.validateKeys(['id', 'label', 'name', 'names']);
    const objects = await managerRead(context, (tx) => tx.list(kind) as O[]);
    const selected = objects.filter((object) => {
      const name = object.spec?.annotations?.name ?? '';
      return (
        filters.matchesPrefix('id', object.id) &&
        filters.matchesPrefix('name', name) &&
        filters.matchesExact('names', name) &&
        filters.matchesLabels('label', object.spec?.annotations?.labels ?? {})
      );
    });
    return { status: 200, json: selected.map(payload.toDocker) };
  });

  router.on('GET', `${base}/{id}`, async ({ params }) => ({ status: 200, json: payload.toDocker(await findOne(params.id!)) }));

  router.on('POST', `${base}/{id}/update`, async ({ params, query, body }) => {
    const version = requiredVersion(query, kind);
    const held = await findOne(params.id!);
    requireCurrent(kind, held.id, held.meta?.version?.index, version);
    const requested = payload.decode(requiredBody(body));
    payload.requireOnlyLabelsChanged(held.spec as S, requested);
    const labels = requested.annotations?.labels ?? {};
    const updated = { ...held, spec: { ...held.spec, annotations: { ...held.spec?.annotations, labels } } } as O;
    await commit(context, [{ action: 'update', kind, object: updated } as never]);
    return { status: 200 };
  });

  router.on('DELETE', `${base}/{id}`, async ({ params }) => {
    const object = await managerRead(context, (tx) => {
      const found = resolve(tx, kind, params.id!);
      requireUnused(tx, kind, found.spec?.annotations?.name ?? found.id, payload.referencedBy(found.id));
      return found;
    });
    await commit(context, [{ action: 'delete', kind, id: object.id, version: object.meta?.version?.index }]);
    return { status: 204 };
  });
}

/** `/secrets` (data never returned) and `/configs`. */
export function secretAndConfigRoutes(router: Router, context: ApiContext): void {
  payloadRoutes(router, context, secretKind);
  payloadRoutes(router, context, configKind);
}
