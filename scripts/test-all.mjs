#!/usr/bin/env node
// Runs every workspace's tests through turbo and ends with one closing line, "Tests: N passed, N failed",
// summed from each package's vitest JSON report. A package that has a test script but wrote no report
// (it crashed before reporting, or found no test files) fails the run: silence is never success.
// Test files are type-checked first (each package's `typecheck` script), since vitest does not.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const reportName = '.test-results.json';

function workspaces() {
  const listed = spawnSync('npm', ['query', '.workspace'], { cwd: root, encoding: 'utf8' });
  if (listed.status !== 0) throw new Error(`npm query .workspace failed: ${listed.stderr}`);
  return JSON.parse(listed.stdout)
    .filter((ws) => ws.scripts?.test)
    .map((ws) => ({ name: ws.name, dir: ws.realpath ?? join(root, ws.location) }));
}

function turbo(...args) {
  const result = spawnSync('npx', ['turbo', 'run', ...args], { cwd: root, stdio: 'inherit', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } });
  return result.status ?? 1;
}

const tested = workspaces();
for (const ws of tested) rmSync(join(ws.dir, reportName), { force: true });

const buildStatus = turbo('build');
// Vitest strips types without checking them, so the test files are type-checked here first.
const typecheckStatus = buildStatus === 0 ? turbo('typecheck', '--output-logs=errors-only') : buildStatus;
const testStatus = buildStatus === 0 ? turbo('test', '--continue', '--concurrency=2') : buildStatus;

let passed = 0;
let failed = 0;
let skipped = 0;
const problems = [];
for (const ws of tested) {
  const file = join(ws.dir, reportName);
  if (!existsSync(file)) {
    problems.push(`${ws.name}: no test report (${relative(root, file)}); its tests did not run to the end`);
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  if (report.numTotalTests === 0) problems.push(`${ws.name}: no tests ran`);
  if (!report.success && report.numFailedTests === 0) problems.push(`${ws.name}: the run failed outside any test (see its output above)`);
  console.log(`${ws.name.padEnd(24)} ${report.numPassedTests} passed, ${report.numFailedTests} failed`);
}
for (const problem of problems) console.log(`problem: ${problem}`);
if (buildStatus !== 0) console.log('problem: the build failed');
if (typecheckStatus !== 0) console.log('problem: type-checking failed (see above)');
console.log(`Tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(buildStatus === 0 && typecheckStatus === 0 && testStatus === 0 && failed === 0 && problems.length === 0 ? 0 : 1);
