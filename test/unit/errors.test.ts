/**
 * The error catalogue (core/errors.ts) is the one list of errors a script or an agent can see:
 * README's table is rendered from it, and every entry says what happened and what to do.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_NAMES, ERRORS, isErrorName, ProductError } from '../../core/errors.ts';
import { README, withErrorTable } from '../../scripts/error-table.ts';

describe('the error catalogue', () => {
  it('is the table in README (regenerate it with `node scripts/error-table.ts`)', () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).toBe(withErrorTable(readme));
  });

  it('names errors as errors and says for each what it means and what to do', () => {
    for (const name of ERROR_NAMES) {
      expect(name).toMatch(/^[A-Z][A-Za-z]+Error$/);
      expect(ERRORS[name].means).toMatch(/\.$/);
      expect(ERRORS[name].todo).toMatch(/\.$/);
    }
  });

  it('tells its names from others', () => {
    expect(isErrorName('JobTimeLimitError')).toBe(true);
    expect(isErrorName('TypeError')).toBe(false);
    expect(isErrorName('SessionLost')).toBe(false);
    expect(isErrorName('toString')).toBe(false);
    expect(isErrorName(undefined)).toBe(false);
  });

  it('raises catalogued errors under their name, as real Errors', () => {
    const error = new ProductError('JobStateError', 'Job x is still running.');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('JobStateError');
    expect(String(error)).toBe('JobStateError: Job x is still running.');
  });
});
