import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listTranscripts, parseTranscript, readTranscript, type Transcript } from './support/transcripts.js';

function exchange(transcript: Transcript, method: string, path: string) {
  const found = transcript.exchanges.find((candidate) => candidate.method === method && candidate.path === path);
  if (found === undefined) throw new Error(`${transcript.name} has no ${method} ${path}`);
  return found;
}

describe('the recorded transcripts', () => {
  const names = listTranscripts();

  it('are all 262 listed, by name without extension', () => {
    expect(names).toHaveLength(262);
    expect(names).toContain('sec_create_28');
    expect(names.every((name) => !name.endsWith('.txt'))).toBe(true);
  });

  it('all parse, and every exchange has a method, a path and a status', () => {
    for (const name of names) {
      const transcript = readTranscript(name);
      expect(transcript.name).toBe(name);
      expect(transcript.exchanges.length).toBeGreaterThan(0);
      for (const { method, path, status, statusText } of transcript.exchanges) {
        expect(method).toMatch(/^(GET|HEAD|POST|DELETE)$/);
        expect(path).toMatch(/^\/[\w./:-]*$/);
        expect(status).toBeGreaterThanOrEqual(200);
        expect(status).toBeLessThan(600);
        expect(statusText).not.toBe('');
      }
    }
  });

  it('sec_create_28: the CLI posts the secret to /v1.41/secrets/create and dockerd answers 201 with its ID', () => {
    const transcript = readTranscript('sec_create_28');
    expect(transcript.cli).toEqual({ stdout: 'pm24wy734bqbbg1bw5ut799fe', stderr: '', rc: 0 });
    const ping = transcript.exchanges[0];
    expect(ping).toMatchObject({ method: 'HEAD', path: '/_ping', status: 200, contentType: 'text/plain; charset=utf-8' });
    expect(ping?.versionPrefix).toBeUndefined();
    expect(ping?.responseBody).toBeUndefined();
    const create = exchange(transcript, 'POST', '/secrets/create');
    expect(create).toMatchObject({
      versionPrefix: '/v1.41',
      requestBody: { Name: 'probe_secret_28', Labels: { probe: '1' }, Data: 'c2Vrcml0LTI4' },
      status: 201,
      statusText: 'Created',
      contentType: 'application/json',
      responseBody: { ID: 'pm24wy734bqbbg1bw5ut799fe' },
      responseBodyTruncated: false,
    });
  });

  it('keep multi-line CLI output, the exit code of a failure and error bodies', () => {
    const init = readTranscript('sw_init_ok_28');
    expect(init.cli.stdout.split('\n')[0]).toBe('Swarm initialized: current node (plm4mybsj4rzwpzo2a7oe05kw) is now a manager.');
    expect(init.cli.stdout).toContain('\n\nTo add a worker to this swarm');
    expect(exchange(init, 'POST', '/swarm/init').responseBody).toBe('plm4mybsj4rzwpzo2a7oe05kw');

    const duplicate = readTranscript('sec_create_dup_28');
    expect(duplicate.cli.rc).toBe(1);
    expect(duplicate.cli.stderr).toContain('Error response from daemon');
    expect(exchange(duplicate, 'POST', '/secrets/create')).toMatchObject({ status: 409, statusText: 'Conflict' });
  });

  it('give the decoded query, with the filters JSON taken literally', () => {
    const removal = readTranscript('stk_rm_20');
    expect(exchange(removal, 'GET', '/services').query.get('filters')).toBe('{"label":{"com.docker.stack.namespace=probe_st20":true}}');
    const logs = exchange(readTranscript('svc_logs_ts_28'), 'GET', '/services/probe_svc_28/logs');
    expect([...logs.query]).toEqual([
      ['details', '1'],
      ['stderr', '1'],
      ['stdout', '1'],
      ['tail', '2'],
      ['timestamps', '1'],
    ]);
  });

  it('give log streams as bytes, whether recorded as a bytes literal or as text', () => {
    const literal = exchange(readTranscript('svc_logs_28'), 'GET', '/services/probe_svc_28/logs');
    expect(literal.contentType).toBeUndefined();
    expect(Buffer.isBuffer(literal.responseBody)).toBe(true);
    expect((literal.responseBody as Buffer).subarray(0, 8)).toEqual(Buffer.from([1, 0, 0, 0, 0, 0, 0, 0xa4]));

    const text = exchange(readTranscript('svc_logs_raw_20'), 'GET', '/services/probe_svc_20/logs');
    expect(text.responseBody).toEqual(
      Buffer.from('\x02\0\0\0\0\0\0\x08err 100\n\x01\0\0\0\0\0\0\x09line 100\n\x01\0\0\0\0\0\0\x08line 25\n\x02\0\0\0\0\0\0\x07err 25\n'),
    );
  });

  it('mark bodies the recorder cut short and keep their recorded prefix', () => {
    const info = exchange(readTranscript('ro_info_20'), 'GET', '/info');
    expect(info.responseBodyTruncated).toBe(true);
    expect(info.responseBody).toBeTypeOf('string');
    expect(info.responseBody as string).toMatch(/^\{\n "ID": "BYSV:/);
    expect(info.responseBody as string).not.toContain('...[truncated');
  });

  it('note the polls the recorder left out and mark the response it interrupted', () => {
    const transcript = readTranscript('stk_rm_wait_28');
    expect(transcript.omissions).toEqual(['the CLI issued 4411 GET /tasks requests in a tight loop over ~14s']);
    const interrupted = transcript.exchanges.findIndex((candidate) => candidate.responseBodyTruncated);
    expect(transcript.exchanges[interrupted]).toMatchObject({ method: 'GET', path: '/tasks' });
    expect(transcript.exchanges[interrupted + 1]).toMatchObject({ method: 'GET', path: '/tasks', responseBodyTruncated: false });
  });

  it('have no exit code when the recorder stopped the CLI, and name the API version CLI 28 negotiated at 1.50', () => {
    expect(readTranscript('svc_logs_follow_28').cli.rc).toBeUndefined();
    expect(exchange(readTranscript('v150_svc_create'), 'POST', '/services/create').versionPrefix).toBe('/v1.50');
  });
});

describe('parseTranscript', () => {
  const header = `${'#'.repeat(30)} sample`;

  it('reads a body recorded as a Python bytes literal, escapes included', () => {
    const text = `${header}\n[cli.rc] 0\n-> +0.00s GET /v1.41/tasks/x/logs?stdout=1\n<- 200 OK  []\n   b'\\x01\\x00\\\\ \\'q\\' "d"\\n\\t\\r'\n`;
    const body = parseTranscript('sample', text).exchanges[0]?.responseBody;
    expect(body).toEqual(Buffer.from('\x01\x00\\ \'q\' "d"\n\t\r', 'latin1'));
  });

  it('refuses a transcript whose header names another one', () => {
    expect(() => parseTranscript('other', `${header}\n`)).toThrow(/other\.txt:1: expected the header/);
  });

  it('refuses a line it does not understand, naming file and line', () => {
    const text = `${header}\n[cli.rc] 0\n-> +0.00s GET /_ping\n<- 200 OK  [text/plain]\nunexpected\n`;
    expect(() => parseTranscript('sample', text)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: 'sample.txt:5: expected a request line "-> +0.00s METHOD /path"' }),
    );
  });

  it('refuses a request without a response', () => {
    expect(() => parseTranscript('sample', `${header}\n-> +0.00s GET /_ping\n`)).toThrow(/sample\.txt:3: expected a response line/);
  });
});

describe('the reference directory', () => {
  const previous = process.env['SHOAL_REFERENCE_DIR'];
  let created: string | undefined;

  afterEach(() => {
    if (previous === undefined) delete process.env['SHOAL_REFERENCE_DIR'];
    else process.env['SHOAL_REFERENCE_DIR'] = previous;
    if (created !== undefined) rmSync(created, { recursive: true, force: true });
    created = undefined;
  });

  it('can be moved with SHOAL_REFERENCE_DIR', () => {
    created = mkdtempSync(join(tmpdir(), 'shoal-reference-'));
    mkdirSync(join(created, 'docker-api-transcripts'));
    writeFileSync(join(created, 'docker-api-transcripts', 'only.txt'), `${'#'.repeat(30)} only\n[cli.rc] 0\n-> +0.00s HEAD /_ping\n<- 200 OK  []\n`);
    writeFileSync(join(created, 'docker-api-transcripts', 'notes.md'), 'not a transcript');
    process.env['SHOAL_REFERENCE_DIR'] = created;
    expect(listTranscripts()).toEqual(['only']);
    expect(readTranscript('only').exchanges).toHaveLength(1);
  });
});
