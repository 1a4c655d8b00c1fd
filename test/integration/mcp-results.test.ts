/**
 * Answers that fit a context window, through MCP over HTTP against a real worker: a search result
 * cut with a marker, an execute result over the budget stored and read back page by page.
 */
import { join } from 'node:path';
import type { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBlobStore } from '../../blobs/local-store.ts';
import { demoProvidersConfig } from '../../demo-apis/index.ts';
import { readyProviders } from '../../providers/ready.ts';
import { SpecSearch } from '../../sandbox/search.ts';
import { countTokens } from '../../server/budget.ts';
import { startMcpHttpServer, type McpHttpServer } from '../../server/http.ts';
import { mcpOverHttp, startInProcessStack, testConfig, type InProcessStack, resultBudget } from '../harness.ts';

const MAX_TOKENS = 1000;

let stack: InProcessStack;
let search: SpecSearch;
let http: McpHttpServer;
let client: McpClient;

beforeAll(async () => {
  // Nothing here calls the APIs; their specs are what search needs.
  const providers = demoProvidersConfig({ crm: { url: 'http://127.0.0.1:9' }, sheets: { url: 'http://127.0.0.1:9' } });
  const config = testConfig({ providers, results: { maxTokens: MAX_TOKENS } });
  stack = await startInProcessStack(config);
  search = await SpecSearch.create((await readyProviders(config.providers)).specs);
  http = await startMcpHttpServer(
    {
      jobs: stack.jobs,
      budget: resultBudget(config),
      search,
      providers: Object.keys(config.providers),
      defaultWaitSeconds: 20,
    },
    { host: '127.0.0.1', port: 0 },
  );
  client = await mcpOverHttp(http.url);
});

afterAll(async () => {
  await client?.close();
  await http?.close();
  search?.dispose();
  await stack?.close();
});

type ToolResult = Awaited<ReturnType<McpClient['callTool']>>;

/** The answer's JSON, checked to be the structured content and to fit the budget. */
function withinBudget(result: ToolResult): Record<string, unknown> {
  expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
  const text = (result.content as Array<{ type: string; text: string }>)[0].text;
  expect(JSON.parse(text)).toEqual(result.structuredContent);
  expect(countTokens(text)).toBeLessThanOrEqual(MAX_TOKENS);
  return result.structuredContent as Record<string, unknown>;
}

const rows = `Array.from({ length: 400 }, (_, i) => ({ id: 'lead_' + i, name: 'Lead Number ' + i, email: 'lead' + i + '@example.com' }))`;
const expectedRows = Array.from({ length: 400 }, (_, i) => ({
  id: `lead_${i}`,
  name: `Lead Number ${i}`,
  email: `lead${i}@example.com`,
}));

describe('results within the token budget, over MCP HTTP', () => {
  it('cuts a search result to the budget, still JSON, with a marker saying how to narrow it', async () => {
    const answer = withinBudget(await client.callTool({ name: 'search', arguments: { code: `async () => ${rows}` } }));
    const result = answer.result as unknown[];
    expect(result.slice(0, -1)).toEqual(expectedRows.slice(0, result.length - 1));
    expect(result.at(-1)).toBe(`…[${400 - (result.length - 1)} more items]`);
    expect(answer.cut).toMatch(
      /^…\[cut: [\d,]+ of [\d,]+ tokens omitted; return fewer fields or filter more narrowly\]$/,
    );

    const small = withinBudget(
      await client.callTool({ name: 'search', arguments: { code: `async () => spec.operations.length` } }),
    );
    expect(small).toEqual({ result: 10 });
  });

  it('stores an execute result over the budget and pages through it with the job tool', async () => {
    const answer = withinBudget(
      await client.callTool({ name: 'execute', arguments: { code: `async () => ({ count: 400, rows: ${rows} })` } }),
    );
    expect(answer).toMatchObject({
      status: 'completed',
      result_ref: expect.stringMatching(/^sha256-/),
      result_pages: expect.any(Number),
    });
    expect(answer.result).toBeUndefined();
    expect(answer.result_preview).toMatchObject({ count: 400, rows: expect.arrayContaining([expectedRows[0]]) });
    const pages = answer.result_pages as number;
    expect(pages).toBeGreaterThan(5);
    expect(answer.cut).toContain(`job({ job_id, page }) for page 1 to ${pages}`);

    const expected = { count: 400, rows: expectedRows };
    const stored = await new LocalBlobStore(join(stack.config.dataDir, 'blobs')).get({
      blob: answer.result_ref as string,
      bytes: JSON.stringify(expected).length,
    });
    expect(JSON.parse(stored.toString('utf8'))).toEqual(expected);

    let text = '';
    for (let page = 1; page <= pages; page++) {
      const read = withinBudget(await client.callTool({ name: 'job', arguments: { job_id: answer.job_id, page } }));
      expect(read).toMatchObject({
        job_id: answer.job_id,
        status: 'completed',
        result_ref: answer.result_ref,
        page,
        result_pages: pages,
      });
      text += read.result_page as string;
    }
    expect(JSON.parse(text)).toEqual(expected);

    const beyond = await client.callTool({ name: 'job', arguments: { job_id: answer.job_id, page: pages + 1 } });
    expect(beyond.isError).toBe(true);
    expect((beyond.content as Array<{ text: string }>)[0].text).toBe(
      `Job ${answer.job_id}'s result has ${pages} pages: ask for page 1 to ${pages}, not ${pages + 1}.`,
    );
  });

  it('refuses pages of a job that has not completed', async () => {
    const started = withinBudget(
      await client.callTool({ name: 'execute', arguments: { code: 'async () => sleep(600000)', wait_seconds: 0 } }),
    );
    const page = await client.callTool({ name: 'job', arguments: { job_id: started.job_id, page: 1 } });
    expect(page.isError).toBe(true);
    expect((page.content as Array<{ text: string }>)[0].text).toMatch(
      /is running: only a completed job's result has pages/,
    );
    await client.callTool({ name: 'job', arguments: { job_id: started.job_id, action: 'cancel' } });
  });
});
