/**
 * The built-in detectors: what they must find (with checksums where the format has one) and the
 * look-alikes they must leave alone (ids, timestamps, dates, versions, uuids), so tokenizing does
 * not wreck the data an agent needs to read.
 */
import { describe, expect, it } from 'vitest';
import { BUILT_IN_DETECTORS, findPersonalData, patternDetector } from '../../privacy/detectors.ts';

const ALL = [BUILT_IN_DETECTORS.iban, BUILT_IN_DETECTORS.card, BUILT_IN_DETECTORS.email, BUILT_IN_DETECTORS.phone];

/** The spans found in `text` as [kind, text] pairs. */
function found(text: string) {
  return findPersonalData(text, ALL).map((f) => [f.kind, text.slice(f.start, f.end)]);
}

describe('privacy detectors', () => {
  it.each([
    ['write to ada.lovelace+crm@example.co.uk today', 'EMAIL', 'ada.lovelace+crm@example.co.uk'],
    ['<grace_hopper@navy.mil>', 'EMAIL', 'grace_hopper@navy.mil'],
    ['mail alan@turing.org.', 'EMAIL', 'alan@turing.org'],
    ['call +1 212 555 0142 now', 'PHONE', '+1 212 555 0142'],
    ['tel +44 (20) 7946-0958', 'PHONE', '+44 (20) 7946-0958'],
    ['+4915112345678', 'PHONE', '+4915112345678'],
    ['office (212) 555-0142', 'PHONE', '(212) 555-0142'],
    ['office 212.555.0142.', 'PHONE', '212.555.0142'],
    ['Berlin 030 12345678', 'PHONE', '030 12345678'],
    ['IBAN DE89 3704 0044 0532 0130 00 EUR', 'IBAN', 'DE89 3704 0044 0532 0130 00'],
    ['GB82WEST12345698765432', 'IBAN', 'GB82WEST12345698765432'],
    ['card 4111 1111 1111 1111, exp 12/29', 'CARD', '4111 1111 1111 1111'],
    ['amex 378282246310005', 'CARD', '378282246310005'],
    ['mc 5555-5555-5555-4444', 'CARD', '5555-5555-5555-4444'],
  ])('finds %j', (text, kind, match) => {
    expect(found(text)).toEqual([[kind, match]]);
  });

  it.each([
    ['a uuid', 'job-123e4567-e89b-12d3-a456-426614174000'],
    ['a uuid with a 0-segment', 'f47ac10b-0123-4567-a456-426614174000'],
    ['a millisecond timestamp', '1712345678901'],
    ['an ISO date and time', '2024-05-01T10:00:00.000Z'],
    ['a date', '2024-01-15'],
    ['an IP address', '192.168.100.200'],
    ['a version', 'v1.22.3333'],
    ['an order id failing Luhn', 'order 4111111111111112'],
    ['digits with no card prefix', '1234567812345670'],
    ['an IBAN with a wrong check digit', 'DE88370400440532013000'],
    ['an email without a domain', 'malformed-row-12'],
    ['an at sign in prose', 'meet @ noon, me@home'],
    ['a short number', '+100 points'],
    ['a month and year', '01-2024'],
    ['a token', '[EMAIL_3] and [PHONE_12]'],
  ])('leaves %s alone', (_what, text) => {
    expect(found(text)).toEqual([]);
  });

  it('finds several in one text, in order and without overlaps', () => {
    const text = 'Ada <ada@example.com>, +1 212 555 0142, card 4111-1111-1111-1111, bob@example.org';
    expect(found(text)).toEqual([
      ['EMAIL', 'ada@example.com'],
      ['PHONE', '+1 212 555 0142'],
      ['CARD', '4111-1111-1111-1111'],
      ['EMAIL', 'bob@example.org'],
    ]);
  });

  it('lets a detector listed first keep an overlapping span', () => {
    const employee = patternDetector('EMPLOYEE_ID', String.raw`E-\d{6}`);
    const text = 'E-123456 and 0123 4567890';
    expect(findPersonalData(text, [employee, BUILT_IN_DETECTORS.phone]).map((f) => f.kind)).toEqual([
      'EMPLOYEE_ID',
      'PHONE',
    ]);
    const greedy = patternDetector('ANY_DIGITS', String.raw`\d[\d ]+\d`);
    expect(findPersonalData('call 030 12345678', [greedy, BUILT_IN_DETECTORS.phone]).map((f) => f.kind)).toEqual([
      'ANY_DIGITS',
    ]);
  });

  it('stays linear on a large text with many findings', () => {
    const text = Array.from(
      { length: 20_000 },
      (_, i) => `row${i}@example.com,+1 212 555 ${String(i % 10_000).padStart(4, '0')}`,
    ).join('\n');
    const spans = findPersonalData(text, ALL);
    expect(spans).toHaveLength(40_000);
    expect(spans.filter((s) => s.kind === 'PHONE')).toHaveLength(20_000);
  });
});
