/** Job ids and summaries an operator can tell apart in the Temporal UI's list. */
import { describe, expect, it } from 'vitest';
import { jobIdSource, newJobId, slug, summarize } from '../../jobs/naming.ts';

const idFor = (code: string, name?: string) => newJobId(jobIdSource(code, name));

const ID = /^(.+)-([0-9a-z]{8})$/;
const slugOf = (id: string) => ID.exec(id)?.[1];

describe('job naming', () => {
  it('takes the agent-given name first', () => {
    expect(slugOf(idFor('async () => 1', 'Import leads (Q3)'))).toBe('import-leads-q3');
    expect(summarize('async () => 1', 'Import leads (Q3)')).toBe('Import leads (Q3)');
  });

  it('else the leading comment, else the first API call', () => {
    const commented = `async () => {\n  // import the leads sheet into the CRM\n  const csv = await sheets.request({ method: 'GET', path: '/leads/csv' });\n}`;
    expect(slugOf(idFor(commented))).toBe('import-the-leads-sheet-into-the-crm');
    expect(summarize(commented)).toBe('import the leads sheet into the CRM');
    const call = `async () => {\n  const r = await crm.request({ method: 'POST', path: '/leads/batch', body });\n  return r;\n}`;
    expect(slugOf(idFor(call))).toBe('crm-post-leads-batch');
    expect(summarize(call)).toBe(`const r = await crm.request({ method: 'POST', path: '/leads/batch', body });`);
    expect(slugOf(idFor('async () => 1 + 1'))).toBe('job');
    expect(summarize(`async () => { const r = await crm.request({ method: 'GET', path: '/leads' }); return r; }`)).toBe(
      `const r = await crm.request({ method: 'GET', path: '/leads' }); return r; }`,
    );
  });

  it('keeps ids short, unique and safe', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => idFor('async () => 1', 'x')));
    expect(ids.size).toBe(1000);
    expect(slug('a'.repeat(100))).toHaveLength(40);
    expect(slug('one two three four five six seven eight nine ten')).toBe('one-two-three-four-five-six-seven-eight');
    expect(slug('../../etc/passwd; rm -rf /')).toBe('etc-passwd-rm-rf');
    expect(slug('日本語')).toBe('');
  });
});
