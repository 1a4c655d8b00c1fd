/**
 * The guest runtimes against the one list of sandbox globals (core/globals.ts): what each runtime
 * actually defines in a real isolate is exactly that list (plus the provider clients), and the
 * config refuses a provider named like any of them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import ivm from 'isolated-vm';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../cli/config.ts';
import { SCRIPT_GLOBALS, SEARCH_GLOBALS } from '../../core/globals.ts';
import { RunnableJob } from '../../core/journal.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import { ScriptSession } from '../../sandbox/session.ts';

/**
 * Each global's name and whether it is locked (neither writable nor configurable): the runtimes
 * define their globals locked, which tells a replaced global (V8 has its own `console`) from one
 * left as it was.
 */
const GLOBALS = `Object.fromEntries(Object.getOwnPropertyNames(globalThis).map((name) => {
  const d = Object.getOwnPropertyDescriptor(globalThis, name);
  return [name, !d.writable && !d.configurable];
}))`;
type Globals = Record<string, boolean>;

/** The globals of a fresh isolated-vm context, before any runtime ran in it. */
async function bareGlobals(): Promise<Globals> {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = await isolate.createContext();
    return JSON.parse(await context.eval(`JSON.stringify(${GLOBALS})`)) as Globals;
  } finally {
    isolate.dispose();
  }
}

describe('guest runtimes define the one list of sandbox globals', () => {
  it('the execute runtime: SCRIPT_GLOBALS, plus one client per provider (and gc, emptied)', async () => {
    const { report } = await ScriptSession.open({
      job: RunnableJob.parse({ jobId: 'job-globals', code: `async () => ${GLOBALS}` }),
      providers: [{ name: 'crm' }, { name: 'weather', tools: ['forecast'] }],
      rounds: [],
      now: 1,
    });
    expect(report.outcome?.kind).toBe('returned');
    const globals = (report.outcome as { value: Globals }).value;
    const bare = await bareGlobals();
    const defined = Object.keys(globals).filter((name) => !(name in bare) || (globals[name] && !bare[name]));
    expect(defined.sort()).toEqual([...SCRIPT_GLOBALS, 'crm', 'weather', 'gc'].sort());
  });

  it('the search runtime: SEARCH_GLOBALS', async () => {
    const search = await SpecSearch.create([]);
    try {
      // Sealing locks every global, so here only new names tell what the runtime defined.
      const globals = (await search.run(`() => ${GLOBALS}`)) as Globals;
      const bare = await bareGlobals();
      expect(Object.keys(globals).filter((name) => !(name in bare))).toEqual([...SEARCH_GLOBALS]);
    } finally {
      search.dispose();
    }
  });

  it('the config refuses a provider named like a sandbox global', () => {
    const provider = { openapi: 'spec.json', baseUrl: 'http://127.0.0.1:1' };
    for (const name of ['checkpoint', 'resume', 'CSV', 'spec', 'step', 'JSON', 'gc']) {
      expect(() => parseConfig({ providers: { [name]: provider } }, undefined, {}), name).toThrow(
        /reserved by the sandbox/,
      );
    }
    expect(parseConfig({ providers: { crm: provider } }, undefined, {}).providers).toHaveProperty('crm');
  });

  it('every guest module is type-checked', () => {
    const dir = new URL('../../sandbox/guest/', import.meta.url);
    const modules = readdirSync(dir).filter((file) => file.endsWith('.js'));
    expect(modules).toContain('runtime.js');
    for (const file of modules) expect(readFileSync(new URL(file, dir), 'utf8'), file).toMatch(/^\/\/ @ts-check\n/);
  });
});
