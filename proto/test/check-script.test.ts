import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const packageRoot = resolve(import.meta.dirname, '..');
const checkScript = join(packageRoot, 'scripts', 'check.sh');

const copies: string[] = [];
afterEach(() => {
  for (const dir of copies.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A throwaway copy of the committed generated code, so the real src/gen is never touched. */
function copyOfGenerated(): string {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-proto-check-'));
  copies.push(dir);
  cpSync(join(packageRoot, 'src', 'gen'), dir, { recursive: true });
  return dir;
}

/** Runs the check against `dir` from an unrelated working directory. */
function runCheck(dir: string) {
  const result = spawnSync('bash', [checkScript, dir], { cwd: tmpdir(), encoding: 'utf8' });
  return { status: result.status, stderr: result.stderr };
}

describe('proto check script', () => {
  it('passes when the generated code matches the .proto files', () => {
    expect(runCheck(copyOfGenerated())).toEqual({ status: 0, stderr: '' });
  });

  it('fails naming the edited file and telling the user how to regenerate', () => {
    const dir = copyOfGenerated();
    appendFileSync(join(dir, 'shoal', 'v1', 'objects.ts'), '// hand edit\n');

    const { status, stderr } = runCheck(dir);

    expect(status).not.toBe(0);
    expect(stderr).toContain('shoal/v1/objects.ts');
    expect(stderr).toContain('npm run proto:gen');
    expect(stderr).not.toContain('types.ts');
  });

  it('fails naming both a stale extra file and a missing generated file', () => {
    const dir = copyOfGenerated();
    writeFileSync(join(dir, 'shoal', 'v1', 'stale.ts'), 'export {};\n');
    rmSync(join(dir, 'shoal', 'v1', 'raft.ts'));

    const { status, stderr } = runCheck(dir);

    expect(status).not.toBe(0);
    expect(stderr).toMatch(/Only in .*shoal\/v1: stale\.ts/);
    expect(stderr).toMatch(/Only in <regenerated>\/shoal\/v1: raft\.ts/);
  });
});
