/** Named records in the local blob store: round trips, first-writer-wins, folders, and names that could escape. */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBlobStore, SYNC_WRITE_BYTES } from '../../blobs/local-store.ts';

const store = () => new LocalBlobStore(join(mkdtempSync(join(tmpdir(), 'dcm-records-')), 'blobs'));

/** Records small enough to be written synchronously, and too large for it (through the thread pool). */
const sizes = [
  { path: 'synchronously', pad: '' },
  { path: 'through the thread pool', pad: 'x'.repeat(SYNC_WRITE_BYTES) },
];

describe('LocalBlobStore records', () => {
  it.each(sizes)('reads back what was stored ($path), and undefined for a record never stored', async ({ pad }) => {
    const s = store();
    expect(await s.getRecord('outcomes/job-1/3')).toBeUndefined();
    expect(await s.putRecord('outcomes/job-1/3', Buffer.from(`{"ok":true}${pad}`))).toBe(true);
    expect((await s.getRecord('outcomes/job-1/3'))?.toString()).toBe(`{"ok":true}${pad}`);
    expect(await s.putRecord('outcomes/job-1/3', Buffer.from(`{"ok":false}${pad}`))).toBe(true);
    expect((await s.getRecord('outcomes/job-1/3'))?.toString()).toBe(`{"ok":false}${pad}`);
  });

  it.each(sizes)('keeps the first record when writers race with ifAbsent ($path)', async ({ pad }) => {
    const s = store();
    const writers = Array.from({ length: 20 }, (_, i) =>
      s.putRecord('outcomes/job-2/0', Buffer.from(`writer ${i}${pad}`), { ifAbsent: true }),
    );
    const won = await Promise.all(writers);
    expect(won.filter(Boolean)).toHaveLength(1);
    const winner = won.indexOf(true);
    expect((await s.getRecord('outcomes/job-2/0'))?.toString()).toBe(`writer ${winner}${pad}`);
  });

  it('leaves no temporary file behind, whichever way it wrote', async () => {
    const s = store();
    for (const { pad } of sizes) {
      await s.putRecord('outcomes/job-3/0', Buffer.from(`a${pad}`));
      await s.putRecord('outcomes/job-3/1', Buffer.from(`b${pad}`), { ifAbsent: true });
      await s.putRecord('outcomes/job-3/1', Buffer.from(`c${pad}`), { ifAbsent: true });
      await s.put(Buffer.from(`blob${pad}`));
    }
    const files = readdirSync(s.location, { recursive: true }).map(String);
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('deletes a folder of records and nothing beside it', async () => {
    const s = store();
    await s.putRecord('vault/alice/a', Buffer.from('1'));
    await s.putRecord('vault/alice/nested/b', Buffer.from('2'));
    await s.putRecord('vault/alicia/c', Buffer.from('3'));
    expect(await s.deleteRecords('vault/alice/')).toBe(2);
    expect(await s.getRecord('vault/alice/a')).toBeUndefined();
    expect((await s.getRecord('vault/alicia/c'))?.toString()).toBe('3');
    expect(await s.deleteRecords('vault/nobody/')).toBe(0);
  });

  it.each(['../escape', 'a/../../b', '/absolute', 'a//b', 'a/./b', '', 'with space', 'a\\b'])(
    'refuses the record name %j',
    async (name) => {
      await expect(store().putRecord(name, Buffer.from('x'))).rejects.toThrow(/not a record name/);
    },
  );

  it('refuses a folder that is not one', async () => {
    await expect(store().deleteRecords('vault/alice')).rejects.toThrow(/not a folder of records/);
    await expect(store().deleteRecords('../')).rejects.toThrow(/not a folder of records/);
  });
});
