/**
 * What tokenizing does not catch, measured instead of claimed (README "Privacy", the limits table).
 * The 250 rows of the demo sheet are returned in the shapes a script might choose, each answer is
 * tokenized as the MCP server would (detectors, and `name` as a field rule), and the test counts
 * how many emails, phones and names are still readable in it, by a reader who knows the shape
 * (joins split characters, decodes base64).
 *
 * The covered shapes must leak nothing; the others are printed for the README and must leak, so a
 * README claiming otherwise is caught when detection changes.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import { SHEET_COLUMNS, sheetRow } from '../../demo-apis/sheets.ts';
import { PrivacyConfig } from '../../privacy/config.ts';
import { Privacy } from '../../privacy/privacy.ts';

const rows = Array.from({ length: 250 }, (_, i) => sheetRow('leads', i));
const privacy = new Privacy(PrivacyConfig.parse({ enabled: true, fields: ['name'] }), {
  store: new LocalBlobStore(mkdtempSync(join(tmpdir(), 'dcm-limits-'))),
});

type Row = (typeof rows)[number];
const csvField = (v: string) => (/[",]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);
const b64 = (v: string) => Buffer.from(v).toString('base64');

/** A shape a script might return, and how a reader recovers text from the tokenized answer. */
interface Shape {
  what: string;
  answer: (rows: Row[]) => unknown;
  /** The text a reader searches for the values (the answer's JSON, joined or decoded as the shape needs). */
  read?: (tokenized: unknown) => string;
  /** The fields the answer holds, and of those, the ones tokenizing covers. */
  holds: Field[];
  covered: Field[];
}

type Field = 'email' | 'phone' | 'name';
const ALL: Field[] = ['email', 'phone', 'name'];

const SHAPES: Shape[] = [
  { what: 'rows as JSON objects', answer: (r) => r, holds: ALL, covered: ALL },
  {
    what: 'the sheet as CSV text',
    answer: (r) =>
      [SHEET_COLUMNS.join(','), ...r.map((row) => SHEET_COLUMNS.map((c) => csvField(row[c])).join(','))].join('\r\n'),
    holds: ALL,
    covered: ['email', 'phone'],
  },
  {
    what: 'log lines: `Ada Lovelace <ada@…> +1 …`',
    answer: (r) => r.map((row) => `${row.name} <${row.email}> ${row.phone}`),
    holds: ALL,
    covered: ['email', 'phone'],
  },
  {
    what: 'names under a key without a field rule (`fullName`)',
    answer: (r) => r.map((row) => ({ fullName: row.name, contact: row.email })),
    holds: ['name', 'email'],
    covered: ['email'],
  },
  {
    what: 'phones with the separators stripped (`12015550000`)',
    answer: (r) => r.map((row) => row.phone.replace(/\D/g, '')),
    holds: ['phone'],
    covered: [],
  },
  {
    what: 'emails split into characters (on purpose)',
    answer: (r) => r.map((row) => row.email.split('')),
    read: (t) => (t as string[][]).map((chars) => chars.join('')).join('\n'),
    holds: ['email'],
    covered: [],
  },
  {
    what: 'emails spelt out (`ada at example dot com`)',
    answer: (r) => r.map((row) => row.email.replace('@', ' at ').replaceAll('.', ' dot ')),
    read: (t) => (t as string[]).map((s) => s.replace(' at ', '@').replaceAll(' dot ', '.')).join('\n'),
    holds: ['email'],
    covered: [],
  },
  {
    what: 'rows base64-encoded (binary content)',
    answer: (r) => r.map((row) => b64(JSON.stringify(row))),
    read: (t) => (t as string[]).map((s) => Buffer.from(s, 'base64').toString()).join('\n'),
    holds: ALL,
    covered: [],
  },
];

/** Whether a reader finds `value` in `text` (a phone also by its digits alone). */
const readable = (text: string, field: Field, value: string) =>
  text.includes(value) || (field === 'phone' && text.includes(value.replace(/\D/g, '')));

/** Share of the distinct emails, phones and names that can still be read in the tokenized answer. */
async function leakRates(shape: Shape): Promise<Record<Field, number>> {
  const tokenized = await privacy.tokenize('limits', shape.answer(rows));
  const text = shape.read ? shape.read(tokenized) : JSON.stringify(tokenized);
  const rate = (field: Field) => {
    const values = [...new Set(rows.map((row) => row[field]))];
    return values.filter((v) => readable(text, field, v)).length / values.length;
  };
  return { email: rate('email'), phone: rate('phone'), name: rate('name') };
}

describe('privacy limits, measured on the 250-row demo sheet', () => {
  const table: string[] = [];

  it.each(SHAPES)('$what', async (shape) => {
    const rates = await leakRates(shape);
    const percent = (field: Field) => (shape.holds.includes(field) ? `${Math.round(rates[field] * 100)}%` : '');
    table.push(`| ${shape.what} | ${percent('email')} | ${percent('phone')} | ${percent('name')} |`);
    for (const field of shape.holds) {
      if (shape.covered.includes(field)) expect(rates[field], `${field}s readable`).toBe(0);
      else expect(rates[field], `${field}s readable (README says they are)`).toBeGreaterThan(0);
    }
  });

  it('prints the table README shows', () => {
    console.log(
      ['| shape of the answer | emails readable | phones | names |', '|---|---:|---:|---:|', ...table].join('\n'),
    );
    expect(table).toHaveLength(SHAPES.length);
  });
});
