/**
 * What a token looks like: `[KIND_N]`, e.g. `[EMAIL_7]` or `[CARD_NUMBER_2]`. A kind is upper-case
 * words joined by `_`, each starting with a letter, so the number after the last `_` is never
 * ambiguous. Numbers start at 1 and count per kind and principal.
 */

/** A kind: EMAIL, PHONE, NAME, EMPLOYEE_ID (words of capitals and digits, each starting with a capital). */
export const KIND = /^[A-Z][A-Z0-9]*(?:_[A-Z][A-Z0-9]*)*$/;

/** Every token in a text (global: reset lastIndex, or use matchAll). */
export const TOKEN = /\[([A-Z][A-Z0-9]*(?:_[A-Z][A-Z0-9]*)*)_([1-9][0-9]{0,8})\]/g;

const WHOLE_TOKEN = new RegExp(`^${TOKEN.source}$`);

export function formatToken(kind: string, n: number): string {
  return `[${kind}_${n}]`;
}

/** The kind and number of `text` when it is exactly one token. */
export function parseToken(text: string): { kind: string; n: number } | undefined {
  const m = WHOLE_TOKEN.exec(text);
  return m ? { kind: m[1], n: Number(m[2]) } : undefined;
}

/** Whether `text` holds a token anywhere (a cheap test before walking a value). */
export function hasToken(text: string): boolean {
  return text.includes('_') && new RegExp(TOKEN.source).test(text);
}

/** The kind a field key names (`first_name` → FIRST_NAME, `phoneNumber` → PHONE_NUMBER), if it makes a valid one. */
export function kindOfKey(key: string): string | undefined {
  const kind = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .join('_')
    .toUpperCase();
  return KIND.test(kind) ? kind : undefined;
}
