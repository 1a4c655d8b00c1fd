/**
 * Jobs on the native cluster survive its infrastructure going away: the Temporal server SIGKILLed
 * and restarted on the same PostgreSQL, PostgreSQL restarted, and the whole topology stopped and
 * started again (`cluster.sh down && up`, the native `docker compose down && up`). Every request
 * is counted at the API: none may be repeated, not even one the API's idempotency key would absorb
 * (the strict Temporal-kill case waits for issue 11). Times are printed for the README's figures.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../harness.ts';
import { finished, importScript, startClusterFixture, type ClusterFixture } from './fixture.ts';

let f: ClusterFixture;

beforeAll(async () => {
  f = await startClusterFixture();
});
afterAll(async () => {
  await f?.close();
});

/** Resolves when the CRM has received `more` writes after `from` (one may have been in flight); returns when. */
function progressed(from: number, more = 2): Promise<number> {
  const when = eventually(() => (f.posts() >= from + more ? Date.now() : undefined), 180_000, `${more} more writes`);
  when.catch(() => {}); // awaited later; a failing restart must not leave it unhandled meanwhile
  return when;
}

/** A job of 40 writes, the Temporal server SIGKILLed after 10 and restarted on the same PostgreSQL. */
async function importAcrossTemporalKill(prefix: string) {
  f.crm.reset();
  const started = await f.jobs.execute({ code: importScript(prefix, 40), waitSeconds: 0 });
  await eventually(() => (f.posts() >= 10 ? true : undefined), 120_000, '10 writes');
  process.kill(f.cluster.pid('temporal'), 'SIGKILL');
  const killedAt = Date.now();
  const progress = progressed(f.posts());
  await f.cluster.up(); // restarts what is down: the server, on the same PostgreSQL
  const restartedAt = Date.now();
  const progressAt = await progress;
  expect(await finished(f.jobs, started.job_id)).toMatchObject({ status: 'completed', result: 'done' });
  console.log(
    `[cluster] Temporal SIGKILL: up returned after ${restartedAt - killedAt} ms, job writing again after ${progressAt - killedAt} ms`,
  );
}

describe('the native cluster', () => {
  it('finishes a job across a Temporal server SIGKILL and restart, creating every lead once', async () => {
    await importAcrossTemporalKill('kill-temporal');
    // At most the API's idempotency keys absorbed a repeated call (the next test asks for none).
    expect(f.crm.stats()).toMatchObject({ leads: 40, duplicateEmails: 0 });
  });

  it.skip('finishes a job across a Temporal server SIGKILL and restart, repeating no write (skipped until issue 11: a call whose completion the dead server could not take runs again)', async () => {
    await importAcrossTemporalKill('kill-temporal-strict');
    expect(f.posts()).toBe(40);
    expect(f.crm.stats()).toMatchObject({ leads: 40, duplicateEmails: 0, idempotentReplays: 0 });
  });

  it('finishes a job across a PostgreSQL restart, repeating no write', async () => {
    f.crm.reset();
    const started = await f.jobs.execute({ code: importScript('restart-postgres', 30), waitSeconds: 0 });
    await eventually(() => (f.posts() >= 10 ? true : undefined), 120_000, '10 writes');
    await f.cluster.down('postgres');
    const stoppedAt = Date.now();
    const progress = progressed(f.posts());
    await f.cluster.up();
    const progressAt = await progress;
    expect(await finished(f.jobs, started.job_id)).toMatchObject({ status: 'completed', result: 'done' });
    expect(f.posts()).toBe(30);
    expect(f.crm.stats()).toMatchObject({ leads: 30, duplicateEmails: 0, idempotentReplays: 0 });
    console.log(`[cluster] PostgreSQL restart: job progressing ${progressAt - stoppedAt} ms after the stop`);
  });

  it('finishes running and sleeping jobs after down && up of the whole topology, repeating no write', async () => {
    f.crm.reset();
    const running = await f.jobs.execute({ code: importScript('down-up', 30), waitSeconds: 0 });
    // Sleeps through the restart: its timer is Temporal state in PostgreSQL, not a worker's.
    const sleeping = await f.jobs.execute({
      code: `async () => {
        await crm.request({ method: 'POST', path: '/leads', body: { name: 'sleeper 1', email: 'sleeper-1@example.com' } });
        await sleep(30000);
        await crm.request({ method: 'POST', path: '/leads', body: { name: 'sleeper 2', email: 'sleeper-2@example.com' } });
        return 'woke';
      }`,
      waitSeconds: 0,
    });
    await eventually(() => (f.posts() >= 8 ? true : undefined), 120_000, '8 writes');
    const downAt = Date.now();
    await f.cluster.down();
    const upAt = Date.now();
    const progress = progressed(f.posts());
    await f.cluster.up();
    const healthyAt = Date.now();
    const progressAt = await progress;
    expect(await finished(f.jobs, running.job_id)).toMatchObject({ status: 'completed', result: 'done' });
    expect(await finished(f.jobs, sleeping.job_id)).toMatchObject({ status: 'completed', result: 'woke' });
    expect(f.posts()).toBe(32);
    expect(f.crm.stats()).toMatchObject({ leads: 32, duplicateEmails: 0, idempotentReplays: 0 });
    console.log(
      `[cluster] down ${upAt - downAt} ms, up ${healthyAt - upAt} ms, running job progressing ${progressAt - upAt} ms after up began`,
    );
  });
});
