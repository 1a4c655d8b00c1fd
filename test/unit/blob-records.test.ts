/** Named records in the local blob store: round trips, first-writer-wins, folders, and names that could escape. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { LocalBlobStore, SYNC_WRITE_BYTES } from '../../blobs/local-store.ts';

const store = () => new LocalBlobStore(join(mkdtempSync(join(tmpdir(), 'dcm-records-')), 'blobs'));

/** Every file under `dir`: its path relative to it, and its size. */
const filesIn = (dir: string) =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => ({ path: relative(dir, join(e.parentPath, e.name)), size: statSync(join(e.parentPath, e.name)).size }));

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

  it('leaves no temporary file behind, whichever way it wrote: only empty spares in its own folder', async () => {
    const s = store();
    for (const { pad } of sizes) {
      await s.putRecord('outcomes/job-3/0', Buffer.from(`a${pad}`));
      await s.putRecord('outcomes/job-3/1', Buffer.from(`b${pad}`), { ifAbsent: true });
      await s.putRecord('outcomes/job-3/1', Buffer.from(`c${pad}`), { ifAbsent: true });
      await s.put(Buffer.from(`blob${pad}`));
    }
    const files = filesIn(s.location);
    expect(files.filter((f) => !f.path.startsWith('tmp/')).map((f) => f.path)).toHaveLength(4); // 2 records, 2 blobs
    expect(files.filter((f) => f.path.startsWith('tmp/') && f.size > 0)).toEqual([]);
  });

  it('writes into spare files made ahead, and makes its files itself when their folder was removed', async () => {
    const s = store();
    const write = (i: number) => s.putRecord(`outcomes/job-4/${i}`, Buffer.from(`record ${i}`), { ifAbsent: true });
    for (let i = 0; i < 20; i++) await write(i);
    const spares = async () => {
      await setTimeout(100); // the spares are made through the thread pool
      return filesIn(s.location).filter((f) => f.path.startsWith('tmp/'));
    };
    const ready = await spares();
    expect(ready.length).toBeGreaterThan(0);
    await write(20);
    expect((await spares()).length).toBe(ready.length - 1);
    rmSync(join(s.location, 'tmp'), { recursive: true });
    for (let i = 21; i < 60; i++) await write(i);
    for (let i = 0; i < 60; i++) expect((await s.getRecord(`outcomes/job-4/${i}`))?.toString()).toBe(`record ${i}`);
  });

  it("removes the temporary folders of this host's processes that died, and no other", () => {
    const location = join(mkdtempSync(join(tmpdir(), 'dcm-records-')), 'blobs');
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    const folders = {
      dead: `${hostname()}-${dead}-0123abcd`,
      running: `${hostname()}-${process.ppid}-0123abcd`,
      otherHost: `another-host-${dead}-0123abcd`,
      notOurs: 'not-a-store-folder',
    };
    for (const folder of Object.values(folders)) {
      mkdirSync(join(location, 'tmp', folder), { recursive: true });
      writeFileSync(join(location, 'tmp', folder, '0'), 'half a write');
    }
    const s = new LocalBlobStore(location);
    const left = readdirSync(join(s.location, 'tmp'));
    expect(left).not.toContain(folders.dead);
    expect(left).toEqual(expect.arrayContaining([folders.running, folders.otherHost, folders.notOurs]));
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
