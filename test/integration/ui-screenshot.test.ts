/**
 * The Temporal UI's workflow list as an operator sees it, in headless Chromium (skipped where
 * Chromium is not installed: apt-get install chromium). scripts/ui-screenshot.ts does the work and
 * leaves the screenshot in test-results/.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CHROMIUM, checkTemporalUi } from '../../scripts/ui-screenshot.ts';

describe.skipIf(!existsSync(CHROMIUM))('the Temporal UI', () => {
  it("filters alice's jobs by owner and tells them apart by readable ids", async () => {
    const check = await checkTemporalUi('test-results/temporal-ui-jobs.png');
    expect(check.listed.sort(), check.text).toEqual([...check.alice].sort());
    expect(check.alice[0]).toMatch(/^import-leads-from-the-sheet-[0-9a-z]{8}$/);
    expect(check.alice[1]).toMatch(/^crm-get-leads-[0-9a-z]{8}$/);
    expect(check.alice[2]).toMatch(/^fix-duplicates-[0-9a-z]{8}$/);
    // The owner and attempt columns, read from the search attributes.
    expect(check.text).toMatch(/DcmOwner\s+DcmAttempt/);
    expect(check.text).toMatch(new RegExp(`${check.alice[0]}\\s+alice\\s+1`));
    expect(existsSync(check.screenshot)).toBe(true);
  });
});
