/**
 * The demo's lead import, written the way an agent would: fetch the sheet's CSV, parse it once as
 * a step, write batches of 100 to the CRM with progress. The test suite and the benchmarks run it.
 * `perBatch` is code spliced into the loop, where `batch` (let) and `i` are in scope: tests use it
 * to validate or filter rows.
 */
export function leadImportScript(sheet: string, perBatch = ''): string {
  return `async () => {
  const csv = await sheets.request({ method: 'GET', path: '/sheets/${sheet}/csv' });
  const rows = await step('parse rows', () => CSV.parse(csv));
  let created = 0;
  for (let i = 0; i < rows.length; i += 100) {
    let batch = rows.slice(i, i + 100);
    ${perBatch}
    const r = await crm.request({ method: 'POST', path: '/leads/batch', body: { leads: batch } });
    created += r.count;
    progress(created, rows.length, 'importing leads');
  }
  return { created };
}`;
}
