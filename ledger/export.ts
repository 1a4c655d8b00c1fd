/**
 * A job's ledger as a file an operator reads, fixes and feeds back (`durable-codemode jobs ledger`):
 * CSV with one row per item (its latest entry) and the failed items' own fields as columns, or a
 * JSON array of the entries. Streamed a segment at a time, so a million items never sit in memory.
 */
import type { AttemptEntry, JobLedger } from './views.ts';

export type LedgerFormat = 'csv' | 'json';

const ENTRY_COLUMNS = [
  'attempt',
  'ledger',
  'key',
  'index',
  'status',
  'error',
  'http_status',
  'message',
  'reconciled',
  'value',
] as const;

/** The ledger as text chunks in `format`; with `failedOnly`, only items whose latest entry failed or is uncertain. */
export async function* exportLedger(
  ledger: JobLedger,
  format: LedgerFormat,
  options: { failedOnly?: boolean } = {},
): AsyncGenerator<string> {
  if (format === 'json') {
    let first = true;
    yield '[';
    for await (const batch of ledger.current(options)) {
      for (const entry of batch) {
        yield `${first ? '\n' : ',\n'}${JSON.stringify(entry)}`;
        first = false;
      }
    }
    yield first ? ']\n' : '\n]\n';
    return;
  }
  // Only failed and uncertain entries carry their item: its fields become columns, found in a first pass.
  const itemColumns = new Set<string>();
  for await (const batch of ledger.current({ failedOnly: true }))
    for (const entry of batch) for (const key of itemKeys(entry.item)) itemColumns.add(key);
  const columns = [...ENTRY_COLUMNS, ...[...itemColumns].map((c) => (isEntryColumn(c) ? `item.${c}` : c))];
  yield csvLine(columns);
  for await (const batch of ledger.current(options)) {
    let chunk = '';
    for (const entry of batch) chunk += csvLine([...entryCells(entry), ...itemCells(entry.item, itemColumns)]);
    yield chunk;
  }
}

function entryCells(e: AttemptEntry): unknown[] {
  return [
    e.attempt,
    e.ledger,
    e.key,
    e.index,
    e.status,
    e.error?.name,
    e.error?.status,
    e.error?.message,
    e.reconciled,
    e.value === undefined ? undefined : JSON.stringify(e.value),
  ];
}

function itemKeys(item: unknown): string[] {
  return item !== null && typeof item === 'object' && !Array.isArray(item) ? Object.keys(item) : [];
}

function itemCells(item: unknown, columns: Set<string>): unknown[] {
  const fields = item !== null && typeof item === 'object' && !Array.isArray(item) ? item : {};
  return [...columns].map((c) => (fields as Record<string, unknown>)[c]);
}

function isEntryColumn(name: string): boolean {
  return (ENTRY_COLUMNS as readonly string[]).includes(name);
}

/** One RFC 4180 record: fields with a comma, quote or line break are quoted; objects as JSON. */
function csvLine(cells: unknown[]): string {
  return (
    cells
      .map((cell) => {
        if (cell === undefined || cell === null) return '';
        const text = typeof cell === 'string' ? cell : JSON.stringify(cell);
        return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
      })
      .join(',') + '\r\n'
  );
}
