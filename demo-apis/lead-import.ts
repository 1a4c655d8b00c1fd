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

/**
 * The same import through `each()` (issue 15): one ledger item per row, keyed by its phone number
 * (the sheet's unique column), `concurrency` rows at a time. Each row's `fn` queues the row; a
 * queue of `batchSize` rows (or what is queued when the round's items are all in) goes out as one
 * `POST /leads/batch?partial=true`, and every row settles with its own result: its lead id, or the
 * CRM's refusal (422, a bad email) as the item's error. `input.fixes` holds corrected rows (the
 * failed items of the ledger, fixed): they replace the sheet's rows with the same phone.
 */
export function ledgerImportScript(sheet: string, { batchSize = 100, concurrency = 100 } = {}): string {
  return `async () => {
  const csv = await sheets.request({ method: 'GET', path: '/sheets/${sheet}/csv' });
  const sheetRows = await step('parse rows', () => CSV.parse(csv));
  const fixes = new Map((input?.fixes ?? []).map((row) => [row.phone, row]));
  const rows = fixes.size === 0 ? sheetRows : sheetRows.map((row) => fixes.get(row.phone) ?? row);

  let queued = [];
  const send = async (batch) => {
    const { results } = await crm.request({
      method: 'POST', path: '/leads/batch', query: { partial: 'true' }, body: { leads: batch.map((q) => q.row) },
    });
    results.forEach((result, i) => {
      if (result.status === 201) batch[i].resolve(result.lead.id);
      else batch[i].reject(Object.assign(new Error(result.error.message), { name: 'ApiError', status: result.status }));
    });
  };
  const flush = () => {
    const batch = queued.splice(0);
    if (batch.length > 0) send(batch).catch((e) => batch.forEach((q) => q.reject(e)));
  };
  const importRow = (row) =>
    new Promise((resolve, reject) => {
      queued.push({ row, resolve, reject });
      if (queued.length === ${batchSize}) flush();
      else if (queued.length === 1) Promise.resolve().then(flush);
    });

  return each(rows, importRow, { key: (row) => row.phone, concurrency: ${concurrency} });
}`;
}

/**
 * The same import with the README's checkpoint pattern (the way before `each()`): batches of 100
 * through the same partial endpoint, a checkpoint after each with where to go on and the indexes
 * of the rows the CRM refused, so a resumed attempt can start there and retry those.
 */
export function checkpointImportScript(sheet: string): string {
  return `async () => {
  const csv = await sheets.request({ method: 'GET', path: '/sheets/${sheet}/csv' });
  const rows = await step('parse rows', () => CSV.parse(csv));
  const start = resume?.next ?? 0;
  const failed = resume?.failed ?? [];
  let created = 0;
  for (let i = start; i < rows.length; i += 100) {
    const leads = rows.slice(i, i + 100);
    const r = await crm.request({ method: 'POST', path: '/leads/batch', query: { partial: 'true' }, body: { leads } });
    r.results.forEach((result, j) => (result.status === 201 ? created++ : failed.push(i + j)));
    await checkpoint({ next: i + 100, failed });
    progress(i + leads.length, rows.length, 'importing leads');
  }
  return { created, failed: failed.length };
}`;
}
