import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@shoal/errors';
import { Config, Secret } from '@shoal/proto';
import { configSpecFromDocker, configToDocker, requireOnlyLabelsChanged as requireConfigLabelsOnly } from '../src/convert/config.js';
import {
  MAX_PAYLOAD_BYTES,
  requireOnlyLabelsChanged as requireSecretLabelsOnly,
  secretSpecFromDocker,
  secretToDocker,
} from '../src/convert/secret.js';
import { expectPrintedAsRecorded, metaBehind, recordedRequestBodies, recordedResponseObjects, type RecordedMeta } from './support/recorded-json.js';

const invalidArgument = (message: string) => expect.objectContaining({ code: ErrorCode.InvalidArgument, message });
const NAME_RULE =
  'invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]';

interface SentSpec {
  Name: string;
  Labels: Record<string, string>;
  Data: string;
  Templating?: { Name: string };
}

describe('secrets', () => {
  it('reads every secret the CLIs created, decoding the base64 data', () => {
    const creates = recordedRequestBodies('POST', /^\/secrets\/create$/);
    expect(creates.length).toBeGreaterThanOrEqual(8);
    for (const { transcript, body } of creates) {
      const sent = body as SentSpec;
      const spec = secretSpecFromDocker(sent);
      expect(spec.annotations, transcript).toMatchObject({ name: sent.Name, labels: sent.Labels });
      expect(spec.data.toString('base64'), transcript).toBe(sent.Data);
    }
  });

  it("accepts stack deploy's updates, which send the same data again with the labels", () => {
    const updates = recordedRequestBodies('POST', /^\/secrets\/[^/]+\/update$/);
    expect(updates.length).toBeGreaterThanOrEqual(2);
    for (const { transcript, body } of updates) {
      const held = secretSpecFromDocker({ ...(body as SentSpec), Labels: {} });
      expect(() => requireSecretLabelsOnly(held, secretSpecFromDocker(body)), transcript).not.toThrow();
    }
  });

  it('prints every secret dockerd printed, field for field', () => {
    const recorded = recordedResponseObjects(/^\/secrets(\/[^/]+)?$/);
    expect(recorded.length).toBeGreaterThanOrEqual(3);
    for (const { transcript, body } of recorded) {
      const spec = body['Spec'] as { Name: string; Labels: Record<string, string> };
      const secret = Secret.fromPartial({ id: body['ID'] as string, meta: metaBehind(body as unknown as RecordedMeta), spec: { annotations: { name: spec.Name, labels: spec.Labels }, data: Buffer.from('s3cret') } });
      expectPrintedAsRecorded(secretToDocker(secret), body, transcript);
    }
  });

  it('never shows the data, in any form', () => {
    const spec = secretSpecFromDocker({ Name: 'db_password', Data: Buffer.from('hunter2-hunter2').toString('base64') });
    const printed = JSON.stringify(secretToDocker(Secret.fromPartial({ id: 's1', spec })));
    expect(printed).not.toContain('Data');
    expect(printed).not.toContain('hunter2');
    expect(printed).not.toContain(spec.data.toString('base64'));
    expect(printed).not.toContain(spec.data.toString('hex'));
  });

  it('keeps a secret driver and a templating driver, and shows both', () => {
    const spec = secretSpecFromDocker({ Name: 'vaulted', Driver: { Name: 'vault', Options: { path: 'a/b' } }, Templating: { Name: 'golang' } });
    expect(spec.driver).toEqual({ name: 'vault', options: { path: 'a/b' } });
    expect(spec.data).toHaveLength(0);
    expect(secretToDocker(Secret.fromPartial({ id: 's1', spec })).Spec).toEqual({
      Name: 'vaulted',
      Labels: {},
      Driver: { Name: 'vault', Options: { path: 'a/b' } },
      Templating: { Name: 'golang' },
    });
  });

  it('takes data up to one byte under 500 KiB', () => {
    const largest = Buffer.alloc(MAX_PAYLOAD_BYTES - 1, 'x');
    expect(secretSpecFromDocker({ Name: 'big', Data: largest.toString('base64') }).data.equals(largest)).toBe(true);
  });

  it.each([
    [{ Name: 'empty', Data: '' }, 'secret data must be larger than 0 and less than 512000 bytes'],
    [{ Name: 'missing' }, 'secret data must be larger than 0 and less than 512000 bytes'],
    [{ Name: 'huge', Data: Buffer.alloc(MAX_PAYLOAD_BYTES, 'x').toString('base64') }, 'secret data must be larger than 0 and less than 512000 bytes'],
    [{ Name: 'nameless', Data: 'eA==', Driver: { Options: { a: 'b' } } }, 'secret driver must have a name'],
    [{ Data: 'eA==' }, 'name must be provided'],
    [{ Name: 42, Data: 'eA==' }, 'json: cannot unmarshal number into Go struct field SecretSpec.Name of type string'],
  ])('refuses %j: %s', (body, message) => {
    expect(() => secretSpecFromDocker(body)).toThrow(invalidArgument(message));
  });

  it.each([
    // Offsets checked against Go 1.19's encoding/json, which dockerd 20.10 is built with.
    ['not base64!', 'illegal base64 data at input byte 3'],
    ['YWJj ZA==', 'illegal base64 data at input byte 4'],
    ['YWI', 'illegal base64 data at input byte 0'],
    ['YQ=', 'illegal base64 data at input byte 3'],
    ['YQ==YQ==', 'illegal base64 data at input byte 4'],
    ['Y===', 'illegal base64 data at input byte 1'],
    ['YQ=x', 'illegal base64 data at input byte 2'],
    ['YWJjZA=', 'illegal base64 data at input byte 7'],
    ['YQ==\nx', 'illegal base64 data at input byte 5'],
    ['YWJj√', 'illegal base64 data at input byte 4'],
  ])('refuses the data %j with Go\'s message: %s', (data, message) => {
    expect(() => secretSpecFromDocker({ Name: 's', Data: data })).toThrow(invalidArgument(message));
  });

  it.each([
    ['YQ==', 'a'],
    ['YW\nJj', 'abc'],
    ['Y\r\nW\nJ\nj', 'abc'],
    ['YQ=\n=', 'a'],
    ['YWJjZA==\n\n', 'abcd'],
  ])('decodes %j as Go does, line breaks ignored', (data, decoded) => {
    expect(secretSpecFromDocker({ Name: 's', Data: data }).data.toString()).toBe(decoded);
  });

  it('refuses data that is not a string with Go\'s message for a []byte field', () => {
    expect(() => secretSpecFromDocker({ Name: 's', Data: 42 })).toThrow(
      invalidArgument('json: cannot unmarshal number into Go struct field SecretSpec.Data of type []uint8'),
    );
  });

  it('refuses a different name or different data on update, and accepts new labels without data', () => {
    const held = secretSpecFromDocker({ Name: 'token', Labels: { a: '1' }, Data: 'dG9rZW4=' });
    expect(() => requireSecretLabelsOnly(held, { ...held, data: Buffer.from('other') })).toThrow(invalidArgument('only updates to Labels are allowed'));
    expect(() => requireSecretLabelsOnly(held, { ...held, data: Buffer.from('tokens') })).toThrow(invalidArgument('only updates to Labels are allowed'));
    expect(() => requireSecretLabelsOnly(held, { ...held, annotations: { name: 'renamed', labels: {}, indices: [] } })).toThrow(
      invalidArgument('only updates to Labels are allowed'),
    );
    expect(() => requireSecretLabelsOnly(held, { ...held, annotations: { name: 'token', labels: { b: '2' }, indices: [] }, data: Buffer.alloc(0) })).not.toThrow();
  });
});

describe('configs', () => {
  it('reads every config the CLIs created, with its templating driver', () => {
    const creates = recordedRequestBodies('POST', /^\/configs\/create$/);
    expect(creates.length).toBeGreaterThanOrEqual(6);
    for (const { transcript, body } of creates) {
      const sent = body as SentSpec;
      const spec = configSpecFromDocker(sent);
      expect(spec.annotations, transcript).toMatchObject({ name: sent.Name, labels: sent.Labels });
      expect(spec.data.toString('base64'), transcript).toBe(sent.Data);
      expect(spec.templating, transcript).toEqual(sent.Templating && { name: sent.Templating.Name, options: {} });
    }
  });

  it("accepts stack deploy's updates, which send the same data again", () => {
    const updates = recordedRequestBodies('POST', /^\/configs\/[^/]+\/update$/);
    expect(updates.length).toBeGreaterThanOrEqual(2);
    for (const { transcript, body } of updates) {
      const held = configSpecFromDocker(body);
      expect(() => requireConfigLabelsOnly(held, configSpecFromDocker(body)), transcript).not.toThrow();
      expect(() => requireConfigLabelsOnly(held, { ...held, data: Buffer.from('changed') }), transcript).toThrow(
        invalidArgument('only updates to Labels are allowed'),
      );
    }
  });

  it('prints every config dockerd printed, data included, field for field', () => {
    const recorded = recordedResponseObjects(/^\/configs(\/[^/]+)?$/);
    expect(recorded.some(({ body }) => (body['Spec'] as { Templating?: unknown }).Templating !== undefined)).toBe(true);
    for (const { transcript, body } of recorded) {
      const config = Config.fromPartial({ id: body['ID'] as string, meta: metaBehind(body as unknown as RecordedMeta), spec: configSpecFromDocker(body['Spec']) });
      expectPrintedAsRecorded(configToDocker(config), body, transcript);
    }
  });

  it.each([
    [{ Name: 'empty', Data: '' }, 'config data must be larger than 0 and less than 512000 bytes'],
    [{ Name: 'huge', Data: Buffer.alloc(MAX_PAYLOAD_BYTES, 'x').toString('base64') }, 'config data must be larger than 0 and less than 512000 bytes'],
    [{ Name: 'bad data', Data: 'eA==' }, NAME_RULE],
    [{ Name: 'b64', Data: '@@@@' }, 'illegal base64 data at input byte 0'],
  ])('refuses %j: %s', (body, message) => {
    expect(() => configSpecFromDocker(body)).toThrow(invalidArgument(message));
  });
});

describe('secret and config names', () => {
  it.each(['a', 'probe_st28_s1', 'db.password', 'A-1', 'x'.repeat(64)])('accepts %s', (name) => {
    expect(secretSpecFromDocker({ Name: name, Data: 'eA==' }).annotations?.name).toBe(name);
    expect(configSpecFromDocker({ Name: name, Data: 'eA==' }).annotations?.name).toBe(name);
  });

  it.each(['-a', 'a-', '.a', 'a_', 'a b', 'a/b', 'x'.repeat(65), 'é'])('refuses %j with swarmkit\'s message', (name) => {
    expect(() => secretSpecFromDocker({ Name: name, Data: 'eA==' })).toThrow(invalidArgument(NAME_RULE));
    expect(() => configSpecFromDocker({ Name: name, Data: 'eA==' })).toThrow(invalidArgument(NAME_RULE));
  });
});
