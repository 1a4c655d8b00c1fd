/**
 * `npm run bench:privacy`: what privacy costs (issue 16).
 *
 * 1. Tokenizing a 10,000-row result (name, email, phone, company, source; `name` as a field rule)
 *    with the vault sealed by a codec key on the local blob store: for a principal that has never
 *    seen the rows (30,000 new tokens in one vault chunk) and again (every token known), next to
 *    what the answer budget does with the same result anyway (its JSON and its token count), and
 *    what a worker spends noting the personal data of the same rows as a response when
 *    `providers.public` names a provider (JobProvenance.observe).
 * 2. A 1,000-call job through Temporal at 10 ms API latency (100 rounds of 10 parallel
 *    `GET /leads?email=`): with privacy on and every email a token the worker restores, and with
 *    privacy off and the real emails; 5 interleaved repetitions after a warm-up, medians compared.
 *    Next to it, the restore work alone: the 1,000 requests restored by a worker's Privacy on the
 *    same blob store in rounds of 10 at once, as the job sends them (the parallel restores of a
 *    round share one read of the vault), as a share of the privacy-off job's wall time; on a loaded
 *    machine the end-to-end difference is mostly noise.
 *
 * It starts its own Temporal dev server, CRM demo API and in-process worker; prints a table and a
 * `BENCH_JSON {...}` line.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { LocalBlobStore } from '../blobs/local-store.ts';
import { parseConfig } from '../cli/config.ts';
import { CRM_SPEC_PATH, startCrmApi } from '../demo-apis/crm.ts';
import { sheetRow } from '../demo-apis/sheets.ts';
import { JobService } from '../jobs/service.ts';
import type { HttpEffect } from '../core/journal.ts';
import { PrivacyConfig } from '../privacy/config.ts';
import { Privacy } from '../privacy/privacy.ts';
import { countTokens, jsonText } from '../server/budget.ts';
import { CODEC_KEY_ENV } from '../temporal/codec.ts';
import { connectClient, connectWorker } from '../temporal/connection.ts';
import { startDevServer } from '../temporal/dev-server.ts';
import { startWorker } from '../temporal/worker.ts';

Runtime.install({ logger: new DefaultLogger('WARN') });

const ROWS = 10_000;
const TOKENIZE_SAMPLES = 5;
const CALLS = 1_000;
const BATCH = 10;
const REPEATS = 5;
const CRM_LATENCY_MS = 10;
const PRIVACY = { enabled: true, fields: ['name'] };

const SCRIPT = `async () => {
  let found = 0;
  for (let i = 0; i < input.emails.length; i += input.batch) {
    const pages = await Promise.all(input.emails.slice(i, i + input.batch).map((email) =>
      crm.request({ method: 'GET', path: '/leads', query: { email } })));
    for (const page of pages) found += page.total;
  }
  return found;
}`;

const log = (line: string) => console.error(`[bench] ${line}`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => `${Math.round(x).toLocaleString('en-US')} ms`;
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

async function tokenizing(dir: string, codecKey: Buffer) {
  const rows = Array.from({ length: ROWS }, (_, i) => sheetRow('leads', i));
  const privacy = new Privacy(PrivacyConfig.parse(PRIVACY), { store: new LocalBlobStore(dir), codecKey });
  const first: number[] = [];
  const again: number[] = [];
  const budget: number[] = [];
  const noting: number[] = [];
  const withPublic = new Privacy(PrivacyConfig.parse({ ...PRIVACY, providers: { public: ['catalog'] } }), {
    store: new LocalBlobStore(dir),
    codecKey,
  });
  const response: HttpEffect = { kind: 'http', provider: 'sheets', method: 'GET', path: '/sheets/leads/rows' };
  for (let i = 0; i < TOKENIZE_SAMPLES; i++) {
    const principal = `bench-${i}`;
    const fresh = await timed(() => privacy.tokenize(principal, rows));
    first.push(fresh.ms);
    again.push((await timed(() => privacy.tokenize(principal, rows))).ms);
    budget.push((await timed(async () => countTokens(jsonText(fresh.value)))).ms);
    const provenance = withPublic.provenance();
    noting.push((await timed(async () => provenance.observe([response], [{ ok: true, value: rows }]))).ms);
    const tokenized = fresh.value as Array<Record<string, string>>;
    assert.match(tokenized[ROWS - 1].email, /^\[EMAIL_\d+\]$/);
    assert.equal(new Set(tokenized.map((r) => r.phone)).size, ROWS);
  }
  return { first: median(first), again: median(again), budget: median(budget), noting: median(noting) };
}

async function main(): Promise<void> {
  const cleanup: Array<() => Promise<unknown>> = [];
  const dataDir = await mkdtemp(join(tmpdir(), 'dcm-bench-privacy-'));
  cleanup.unshift(() => rm(dataDir, { recursive: true, force: true }));
  const codecKey = randomBytes(32);
  process.env[CODEC_KEY_ENV] = codecKey.toString('base64');
  try {
    log(`tokenizing a ${ROWS.toLocaleString('en-US')}-row result, ${TOKENIZE_SAMPLES} samples`);
    const tokenize = await tokenizing(join(dataDir, 'tokenize-blobs'), codecKey);

    log('starting Temporal dev server, CRM demo API and a worker');
    const env = await startDevServer({});
    cleanup.unshift(() => env.teardown());
    const crm = await startCrmApi({ latencyMs: CRM_LATENCY_MS });
    cleanup.unshift(() => crm.close());
    const config = parseConfig(
      {
        providers: { crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url } },
        temporal: { taskQueue: `bench-${randomUUID().slice(0, 8)}` },
        dataDir,
        privacy: PRIVACY,
      },
      undefined,
      { TEMPORAL_ADDRESS: env.address },
    );
    const client = await connectClient(config.temporal);
    cleanup.unshift(() => client.connection.close());
    const connection = await connectWorker(config.temporal);
    cleanup.unshift(() => connection.close());
    const worker = await startWorker(config, connection);
    cleanup.unshift(() => worker.shutdown());

    const emails = Array.from({ length: CALLS }, (_, i) => `bench.${i}@example.com`);
    for (let i = 0; i < CALLS; i += 100) {
      const leads = emails.slice(i, i + 100).map((email, j) => ({ name: `Lead ${i + j}`, email }));
      await fetch(`${crm.url}/leads/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ leads }),
      });
    }
    const privacy = new Privacy(config.privacy, {
      store: new LocalBlobStore(join(dataDir, 'blobs')),
      codecKey,
    });
    const principal = { name: 'bench', seesAll: false };
    const tokens = await privacy.tokenize(principal.name, emails);
    assert.match(tokens[0], /^\[EMAIL_\d+\]$/);
    const modes = {
      restored: { jobs: new JobService(client, config, principal, { privacy }), emails: tokens },
      plain: { jobs: new JobService(client, config, principal), emails },
    };

    async function run(mode: keyof typeof modes): Promise<number> {
      const { jobs, emails: input } = modes[mode];
      const { ms: wall, value } = await timed(async () => {
        let view = await jobs.execute({
          code: SCRIPT,
          input: { emails: input, batch: BATCH },
          waitSeconds: 60,
        });
        while (view.status === 'running') view = await jobs.status(view.job_id, 60);
        return view;
      });
      assert.equal(value.status, 'completed', `${mode}: ${JSON.stringify(value.error)}`);
      assert.equal(value.result, CALLS, `${mode}: every email must find its lead`);
      return wall;
    }

    log(`${CALLS} calls in rounds of ${BATCH}: warm-up, then ${REPEATS} interleaved repetitions`);
    await run('plain');
    await run('restored');
    const samples: Record<keyof typeof modes, number[]> = { plain: [], restored: [] };
    for (let i = 0; i < REPEATS; i++) {
      for (const mode of ['plain', 'restored'] as const) samples[mode].push(await run(mode));
    }
    const plain = median(samples.plain);
    const restored = median(samples.restored);

    const restorer = new Privacy(config.privacy, { store: new LocalBlobStore(join(dataDir, 'blobs')), codecKey });
    const restoring: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const { ms: took, value: sent } = await timed(async () => {
        const out: unknown[] = [];
        for (let i = 0; i < tokens.length; i += BATCH) {
          const round = tokens.slice(i, i + BATCH).map(async (email) => {
            const request = {
              kind: 'http' as const,
              provider: 'crm',
              method: 'GET' as const,
              path: '/leads',
              query: { email },
            };
            return (await restorer.restore(principal.name, request, 'crm: GET /leads')).query?.email;
          });
          out.push(...(await Promise.all(round)));
        }
        return out;
      });
      assert.deepEqual(sent, emails);
      restoring.push(took);
    }
    const restoreWork = median(restoring);

    const rows = [
      ['', 'time', 'compared'],
      [
        `tokenize ${ROWS.toLocaleString('en-US')} rows, new principal`,
        ms(tokenize.first),
        `×${(tokenize.first / tokenize.budget).toFixed(2)} the budget's token count`,
      ],
      [
        `tokenize ${ROWS.toLocaleString('en-US')} rows, tokens known`,
        ms(tokenize.again),
        `×${(tokenize.again / tokenize.budget).toFixed(2)} the budget's token count`,
      ],
      [`budget: JSON + token count of the tokenized rows`, ms(tokenize.budget), ''],
      [
        `noting the rows' personal data (providers.public set)`,
        ms(tokenize.noting),
        `×${(tokenize.noting / tokenize.budget).toFixed(2)} the budget's token count`,
      ],
      [`${CALLS} calls, privacy off, real emails`, ms(plain), ''],
      [
        `${CALLS} calls, privacy on, tokens restored`,
        ms(restored),
        `${restored >= plain ? '+' : ''}${pct((restored - plain) / plain)} wall time`,
      ],
      [
        `restoring the ${CALLS} requests alone, ${BATCH} at once`,
        ms(restoreWork),
        `${pct(restoreWork / plain)} of the privacy-off job`,
      ],
      [
        `tokenizing the 10,000 rows vs the ${CALLS}-call job`,
        '',
        `${pct(tokenize.first / plain)} (new), ${pct(tokenize.again / plain)} (known)`,
      ],
    ];
    const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
    console.log(
      rows
        .map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   '))
        .join('\n'),
    );
    console.log(
      `BENCH_JSON ${JSON.stringify({ tokenize, calls: { plain, restored, samples, restoreWork, restoring } })}`,
    );
  } finally {
    for (const step of cleanup) await step().catch((e: unknown) => log(`cleanup: ${(e as Error).message}`));
    delete process.env[CODEC_KEY_ENV];
  }
}

await main();
