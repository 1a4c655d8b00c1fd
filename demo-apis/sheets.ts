// A read-only "sheets" API serving deterministic lead rows as CSV or JSON: the read side of the demo import.
import { HttpError, intParam, json, startHttpApi } from './http-api.ts';
import type { Route, RouteRequest } from './http-api.ts';
import { SHEETS_SPEC } from './providers.ts';

export { SHEETS_SPEC_PATH } from './providers.ts';
export const SHEET_COLUMNS = ['name', 'email', 'phone', 'company', 'source'] as const;

export type SheetRow = Record<(typeof SHEET_COLUMNS)[number], string>;

export interface SheetsApiOptions {
  port?: number;
  host?: string;
  latencyMs?: number;
  /** Sheet id → row count. */
  sheets?: Record<string, number>;
  /** Sheet id → indexes of rows served with a malformed email, to exercise a script's validation. */
  malformedRows?: Record<string, number[]>;
  requiredBearerToken?: string;
}

export interface SheetsStats {
  requests: number;
  byRoute: Record<string, number>;
}

export interface SheetsApi {
  url: string;
  specUrl: string;
  stats(): SheetsStats;
  close(): Promise<void>;
}

const FIRST_NAMES = [
  'Ada',
  'Grace',
  'Alan',
  'Katherine',
  'Edsger',
  'Barbara',
  'Donald',
  'Margaret',
  'Linus',
  'Radia',
  'Dennis',
  'Frances',
];
const LAST_NAMES = [
  'Lovelace',
  'Hopper',
  'Turing',
  'Johnson',
  'Dijkstra',
  'Liskov',
  'Knuth',
  'Hamilton',
  'Torvalds',
  'Perlman',
  'Ritchie',
];
// Some names contain a comma or a double quote so consumers must handle RFC 4180 quoting.
const COMPANIES = [
  'Analytical Engines Ltd',
  'Babbage, Lovelace & Co',
  'Acme "Rockets" Inc',
  'Initech',
  'Globex, Inc.',
  'Hooli',
  'The "Big" Company, LLC',
  'Umbrella Corp',
  'Stark Industries',
];
const SOURCES = ['webinar', 'referral', 'trade show', 'newsletter', 'website', 'cold call', 'partner'];

export async function startSheetsApi(options: SheetsApiOptions = {}): Promise<SheetsApi> {
  const { sheets = { leads: 250 }, malformedRows = {}, ...httpOptions } = options;
  const malformed = new Map(Object.entries(malformedRows).map(([id, rows]) => [id, new Set(rows)]));
  const rowOf = (id: string, index: number): SheetRow =>
    malformed.get(id)?.has(index) ? { ...sheetRow(id, index), email: `malformed-row-${index}` } : sheetRow(id, index);
  for (const [id, rows] of Object.entries(sheets)) {
    if (!Number.isInteger(rows) || rows < 0) throw new RangeError(`sheet ${id}: row count must be an integer >= 0`);
  }
  const csvCache = new Map<string, Csv>();

  function sheetOf({ params }: RouteRequest): { id: string; rows: number } {
    if (!Object.hasOwn(sheets, params.id)) throw new HttpError(404, 'not_found', `sheet ${params.id} not found`);
    return { id: params.id, rows: sheets[params.id] };
  }

  function csvOf(sheet: { id: string; rows: number }): Csv {
    let csv = csvCache.get(sheet.id);
    if (!csv) {
      csv = buildCsv(sheet.id, sheet.rows, rowOf);
      csvCache.set(sheet.id, csv);
    }
    return csv;
  }

  const routes: Route[] = [
    {
      method: 'GET',
      path: '/sheets',
      handle: () => json(200, { sheets: Object.entries(sheets).map(([id, rows]) => ({ id, rows })) }),
    },
    {
      method: 'GET',
      path: '/sheets/{id}',
      handle: (request) => json(200, { ...sheetOf(request), columns: SHEET_COLUMNS }),
    },
    {
      method: 'GET',
      path: '/sheets/{id}/csv',
      handle(request) {
        const sheet = sheetOf(request);
        const [start, end] = rowRange(request.query, sheet.rows, sheet.rows);
        const csv = csvOf(sheet);
        return {
          status: 200,
          text: csv.text.slice(0, csv.rowStarts[0]) + csv.text.slice(csv.rowStarts[start], csv.rowStarts[end]),
          contentType: 'text/csv; charset=utf-8',
          headers: { 'x-total-rows': String(sheet.rows) },
        };
      },
    },
    {
      method: 'GET',
      path: '/sheets/{id}/rows',
      handle(request) {
        const sheet = sheetOf(request);
        const [start, end] = rowRange(request.query, sheet.rows, 100, 1000);
        const rows = Array.from({ length: end - start }, (_, i) => rowOf(sheet.id, start + i));
        return json(200, { rows, total: sheet.rows });
      },
    },
  ];

  const api = await startHttpApi({ ...httpOptions, name: 'Sheets demo API', spec: SHEETS_SPEC, routes });
  return {
    url: api.url,
    specUrl: api.specUrl,
    stats: () => {
      const { requests, byRoute } = api.stats();
      return { requests, byRoute };
    },
    close: () => api.close(),
  };
}

/** [start, end) row range from `offset`/`limit`, clamped to the sheet. */
function rowRange(query: URLSearchParams, rows: number, defaultLimit: number, maxLimit?: number): [number, number] {
  const offset = Math.min(intParam(query, 'offset', { fallback: 0 }), rows);
  const limit = intParam(query, 'limit', { fallback: defaultLimit, max: maxLimit });
  return [offset, Math.min(offset + limit, rows)];
}

/** The whole sheet as CSV plus where each row starts, so any row range is one slice. */
interface Csv {
  text: string;
  /** rowStarts[i] is the offset of row i; rowStarts[rows] is the end of the text. */
  rowStarts: number[];
}

function buildCsv(id: string, rows: number, rowOf: (id: string, index: number) => SheetRow): Csv {
  const lines = [SHEET_COLUMNS.join(',')];
  const rowStarts: number[] = [];
  let length = lines[0].length + 2;
  for (let i = 0; i < rows; i++) {
    rowStarts.push(length);
    const row = rowOf(id, i);
    const line = SHEET_COLUMNS.map((column) => csvField(row[column])).join(',');
    lines.push(line);
    length += line.length + 2;
  }
  rowStarts.push(length);
  // RFC 4180 line breaks are CRLF, including after the last record.
  return { text: lines.join('\r\n') + '\r\n', rowStarts };
}

/** Row `index` of sheet `id`; a pure function of both, so every run serves identical data. */
export function sheetRow(id: string, index: number): SheetRow {
  const h = fnv1a(id);
  const first = FIRST_NAMES[(index + h) % FIRST_NAMES.length];
  const last = LAST_NAMES[(index * 5 + h) % LAST_NAMES.length];
  return {
    name: `${first} ${last}`,
    email: `${first}.${last}.${index}@example.com`.toLowerCase(),
    // Unique for the first 8 million rows: an area code per 10,000.
    phone: `+1 ${201 + (Math.floor(index / 10_000) % 799)} 555 ${String(index % 10_000).padStart(4, '0')}`,
    company: COMPANIES[(index * 7 + h) % COMPANIES.length],
    source: SOURCES[(index * 3 + h) % SOURCES.length],
  };
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}
