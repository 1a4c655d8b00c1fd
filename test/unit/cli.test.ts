/** The CLI as an operator meets it: help for every command, and clear errors for bad input. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import { PrivacyConfig } from '../../privacy/config.ts';
import { Privacy } from '../../privacy/privacy.ts';
import { CLI } from '../harness.ts';

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--no-node-snapshot', CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('durable-codemode CLI', () => {
  it('prints usage with every command', () => {
    const r = cli(['--help']);
    expect(r.code).toBe(0);
    for (const command of ['dev', 'worker', 'serve', 'jobs', 'privacy']) expect(r.stdout).toContain(`  ${command}`);
  });

  it.each(['dev', 'worker', 'serve', 'jobs', 'privacy'])('answers %s --help', (command) => {
    const r = cli([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: durable-codemode ${command}`));
  });

  it('rejects unknown commands and options with usage and exit code 2', () => {
    expect(cli(['frobnicate'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('Unknown command "frobnicate"'),
    });
    expect(cli(['worker', '--nope'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("Unknown option '--nope'"),
    });
    expect(cli(['serve'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('exactly one of --stdio or --http'),
    });
  });

  it('says which Temporal address it tried and how to set it', () => {
    const r = cli(['jobs', 'list'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Could not reach Temporal at 127.0.0.1:1');
    expect(r.stderr).toContain('TEMPORAL_ADDRESS');
  });

  it('refuses a config with an unknown key, naming the one meant', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dcm-cli-')), 'config.json');
    writeFileSync(file, JSON.stringify({ provider: { crm: { openapi: 'x.json', baseUrl: 'http://127.0.0.1:1' } } }));
    const r = cli(['dev', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('(top level): unknown key "provider" (did you mean "providers"?)');
  });

  it("refuses to start a worker without its providers' credentials, naming provider and variable", () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dcm-cli-')), 'config.json');
    const spec = join(mkdtempSync(join(tmpdir(), 'dcm-cli-')), 'spec.json');
    writeFileSync(spec, JSON.stringify({ openapi: '3.0.3', info: { title: 't', version: '1' }, paths: {} }));
    writeFileSync(
      file,
      JSON.stringify({
        providers: {
          crm: {
            openapi: spec,
            baseUrl: 'http://127.0.0.1:1',
            auth: { type: 'bearer', tokenEnv: 'DCM_TEST_UNSET_TOKEN' },
          },
        },
      }),
    );
    // No Temporal at this address: the check comes first.
    const r = cli(['worker', '--config', file], { TEMPORAL_ADDRESS: '127.0.0.1:1', DCM_TEST_UNSET_TOKEN: '' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('provider "crm": auth.tokenEnv names DCM_TEST_UNSET_TOKEN, which is not set');
    expect(r.stderr).not.toContain('Could not reach Temporal');
  });

  it('refuses dev flags that do not fit the config or each other', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dcm-cli-')), 'config.json');
    writeFileSync(file, JSON.stringify({ providers: { crm: { openapi: 'x.json', baseUrl: 'http://127.0.0.1:1' } } }));
    expect(cli(['dev', '--config', file, '--crm-port', '0'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--crm-port and --sheets-port place the demo APIs'),
    });
    expect(cli(['dev', '--temporal-address', '127.0.0.1:1', '--ui-port', '0'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--temporal-address uses a Temporal server that is already running'),
    });
    expect(cli(['dev', '--port', '3000', '--crm-port', '3000'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--port and --crm-port are both 3000'),
    });
    expect(cli(['dev', '--ui-port', '70000'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--ui-port must be a whole number from 0 to 65535; got 70000'),
    });
  });

  it("purges one principal's privacy vault from the config's blob store: her tokens stop restoring, others' stay", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dcm-cli-'));
    const file = join(dataDir, 'config.json');
    writeFileSync(file, JSON.stringify({ dataDir, privacy: { enabled: true } }));
    const privacy = new Privacy(PrivacyConfig.parse({ enabled: true }), {
      store: new LocalBlobStore(join(dataDir, 'blobs')),
    });
    const [alices] = await privacy.tokenize('alice', ['ada@example.com']);
    const [bobs] = await privacy.tokenize('bob', ['ada@example.com']);
    const env = { DURABLE_CODEMODE_CODEC_KEY: '' };
    expect(cli(['privacy', 'purge', 'alice', '--config', file], env)).toMatchObject({
      code: 0,
      stdout: expect.stringContaining("Purged alice's privacy vault"),
    });
    expect(await privacy.vault.of('alice').valuesOf([alices])).toEqual(new Map());
    expect(await privacy.vault.of('bob').valuesOf([bobs])).toEqual(new Map([[bobs, 'ada@example.com']]));
    expect(cli(['privacy', 'purge', 'alice', '--config', file], env).stdout).toContain('nothing to purge');
    expect(cli(['privacy', 'purge'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('Usage: durable-codemode privacy purge'),
    });
  });

  it('names the offending key of an invalid config', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'dcm-cli-')), 'config.json');
    writeFileSync(file, JSON.stringify({ providers: { 'bad-name': { openapi: 'x.json', baseUrl: 'ftp://x' } } }));
    const r = cli(['worker', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Invalid config in ${file}`);
    expect(r.stderr).toMatch(/providers\.bad-name: a provider name must be a JavaScript identifier/);
  });
});
