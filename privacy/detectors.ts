/**
 * Finding personal data in text: the built-in detectors (emails, phone numbers, IBANs with their
 * mod-97 check, card numbers with the Luhn check and a card network's prefix) and the operator's
 * own patterns. Each detector is a regular expression that proposes a span and a check that
 * confirms it, so an order id or a timestamp is not taken for a card number.
 *
 * What no pattern can find (a name in free text) needs a field rule (tokenize.ts), and what a
 * script disguises on purpose (an email split into characters) is found by nothing: README
 * "Privacy" lists the limits.
 */

/** A span of personal data in a text: [start, end) and its kind (EMAIL, PHONE, ...). */
export interface Finding {
  start: number;
  end: number;
  kind: string;
}

export interface Detector {
  kind: string;
  /** Global regular expression proposing candidate spans. */
  pattern: RegExp;
  /** Cheap pre-test of a whole text; false skips the pattern. */
  mayContain?: (text: string) => boolean;
  /** Confirms a candidate; returns how many of its leading characters are the real match (0: none). */
  accept?: (candidate: string) => number;
}

const hasDigit = (text: string) => /[0-9]/.test(text);
const digitsOf = (text: string) => text.replace(/[^0-9]/g, '');

/** name@domain.tld; the domain is matched loosely and trimmed to end in a label of two or more letters. */
const EMAIL: Detector = {
  kind: 'EMAIL',
  pattern: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+/g,
  mayContain: (text) => text.includes('@'),
  accept(candidate) {
    const at = candidate.indexOf('@');
    const domain = /^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}/.exec(candidate.slice(at + 1));
    if (!domain || candidate.startsWith('.')) return 0;
    return at + 1 + domain[0].length;
  },
};

/**
 * International numbers (+ and 8-15 digits, spaces, dots, dashes, one parenthesized group), North
 * American ones with separators ((212) 555-0142, 212-555-0142), and national ones with a trunk
 * 0 and a separator (030 1234567). Digits alone are not taken: they are too often ids.
 */
const PHONE: Detector = {
  kind: 'PHONE',
  pattern: new RegExp(
    [
      String.raw`(?<![\w+])\+[1-9][0-9]{0,2}(?:[ .-]?\([0-9]{1,4}\)|[ .-]?[0-9]{1,5}){1,6}`,
      // National forms: not inside a longer dotted or dashed run (a uuid, a version, a date).
      String.raw`(?<![\w+.-])\(?[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4}`,
      String.raw`(?<![\w+.-])0[0-9]{1,4}[ /-][0-9]{3,8}(?:[ -][0-9]{2,5})?`,
    ]
      .map((branch) => `(?:${branch})`)
      .join('|') + String.raw`(?![\w])(?![.-][0-9A-Za-z])`,
    'g',
  ),
  mayContain: hasDigit,
  accept(candidate) {
    const digits = digitsOf(candidate).length;
    return digits >= 8 && digits <= 15 ? candidate.length : 0;
  },
};

/** Letters to digits and mod 97, piecewise (the number has up to 70 digits). */
function ibanChecksumOk(iban: string): boolean {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const ch of rearranged) {
    const value = ch >= 'A' ? ch.charCodeAt(0) - 55 : ch.charCodeAt(0) - 48;
    rest = value >= 10 ? (rest * 100 + value) % 97 : (rest * 10 + value) % 97;
  }
  return rest === 1;
}

/** DE89370400440532013000, or printed in groups of four: DE89 3704 0044 0532 0130 00. */
const IBAN: Detector = {
  kind: 'IBAN',
  pattern:
    /(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)(?![A-Za-z0-9])/g,
  mayContain: hasDigit,
  accept(candidate) {
    const compact = candidate.replaceAll(' ', '');
    if (compact.length <= 34 && ibanChecksumOk(compact)) return candidate.length;
    // A short last group may be the next word: try without it.
    const lastSpace = candidate.lastIndexOf(' ');
    if (lastSpace > 0 && candidate.length - lastSpace <= 4) {
      const shorter = candidate.slice(0, lastSpace);
      if (ibanChecksumOk(shorter.replaceAll(' ', ''))) return shorter.length;
    }
    return 0;
  },
};

/** Prefixes of the card networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro). */
const CARD_PREFIX = /^(?:4|5[0-9]|2[2-7]|3[47]|3[0689]|35|6)/;

function luhnOk(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** 13-19 digits, optionally grouped by spaces or dashes, with a network's prefix and a valid Luhn check digit. */
const CARD: Detector = {
  kind: 'CARD',
  pattern: /(?<![\w+])(?:[0-9][ -]?){12,18}[0-9](?![\w])/g,
  mayContain: hasDigit,
  accept(candidate) {
    const digits = digitsOf(candidate);
    return digits.length >= 13 && digits.length <= 19 && CARD_PREFIX.test(digits) && luhnOk(digits)
      ? candidate.length
      : 0;
  },
};

export const BUILT_IN_DETECTORS = { email: EMAIL, phone: PHONE, iban: IBAN, card: CARD } as const;
export type BuiltInDetector = keyof typeof BUILT_IN_DETECTORS;

/** An operator's pattern from the config: every match is personal data of `kind`. */
export function patternDetector(kind: string, source: string, flags = ''): Detector {
  return { kind, pattern: new RegExp(source, `g${flags.replace(/[gy]/g, '')}`) };
}

/**
 * All spans the detectors find in `text`, in order and without overlaps: where two overlap, the
 * detector listed first keeps its span.
 */
export function findPersonalData(text: string, detectors: readonly Detector[]): Finding[] {
  let found: Finding[] = [];
  for (const detector of detectors) {
    if (detector.mayContain && !detector.mayContain(text)) continue;
    const spans: Finding[] = [];
    for (const m of text.matchAll(detector.pattern)) {
      const length = m[0].length === 0 ? 0 : detector.accept ? detector.accept(m[0]) : m[0].length;
      if (length > 0) spans.push({ start: m.index, end: m.index + length, kind: detector.kind });
    }
    if (spans.length > 0) found = mergeKeepingFirst(found, spans);
  }
  return found;
}

/** Both sorted lists of spans merged, without the spans of `later` that overlap one of `kept` (linear). */
function mergeKeepingFirst(kept: Finding[], later: Finding[]): Finding[] {
  if (kept.length === 0) return later;
  const merged: Finding[] = [];
  let i = 0;
  for (const span of later) {
    while (i < kept.length && kept[i].end <= span.start) merged.push(kept[i++]);
    if (i < kept.length && kept[i].start < span.end) continue;
    merged.push(span);
  }
  while (i < kept.length) merged.push(kept[i++]);
  return merged;
}
