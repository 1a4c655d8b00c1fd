/**
 * What an operator sees in the Temporal UI's workflow list, checked in a headless browser and kept
 * as a screenshot: `dev` runs jobs for alice and bob, and the list filtered on `DcmOwner = "alice"`,
 * with the jobs' search attributes as columns, shows alice's jobs by their readable ids, and only hers.
 *
 *   node --no-node-snapshot scripts/ui-screenshot.ts [OUT.png]     (default test-results/temporal-ui-jobs.png)
 *
 * Needs Chromium (Debian: apt-get install chromium; or CHROMIUM=/path/to/chrome) and playwright-core
 * (a dev dependency). test/integration/ui-screenshot.test.ts runs it where Chromium is installed.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { freePorts, startDev } from '../test/dev-process.ts';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** The flags Chromium needs on a machine without a network, as root, headless. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The workflow list's columns: the usual ones and the jobs' search attributes. */
const COLUMNS = ['Status', 'Workflow ID', 'DcmOwner', 'DcmAttempt', 'DcmPhase', 'DcmProgressDone', 'Start', 'End'];

const TOKENS = { alice: 'alice-token-0123456789', bob: 'bob-token-0123456789' };

export interface UiCheck {
  screenshot: string;
  /** The job ids alice's filtered list shows, and the ids of her jobs and bob's. */
  listed: string[];
  alice: string[];
  bob: string[];
  /** The list's text, for a failing check to show. */
  text: string;
}

async function mcpAs(url: string, token: string): Promise<McpClient> {
  const client = new McpClient({ name: 'ui-screenshot', version: '0' });
  const headers = { authorization: `Bearer ${token}` };
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

async function execute(client: McpClient, args: Record<string, unknown>): Promise<string> {
  const answer = (await client.callTool({ name: 'execute', arguments: args })).structuredContent as { job_id?: string };
  if (!answer.job_id) throw new Error(`execute did not start a job: ${JSON.stringify(answer)}`);
  return answer.job_id;
}

export async function checkTemporalUi(screenshot: string): Promise<UiCheck> {
  const { chromium } = await import('playwright-core');
  const [temporal, ui, mcp] = await freePorts(3);
  const dev = await startDev(
    [
      ...['--temporal-port', String(temporal), '--ui-port', String(ui), '--port', String(mcp)],
      ...['--crm-port', '0', '--sheets-port', '0'],
    ],
    { DURABLE_CODEMODE_HTTP_TOKENS: `alice:${TOKENS.alice},bob:${TOKENS.bob}` },
  );
  try {
    if (!dev.output().includes('dev is running')) throw new Error(`dev did not start:\n${dev.output()}`);
    const url = `http://127.0.0.1:${mcp}/mcp`;
    const alice = await mcpAs(url, TOKENS.alice);
    const bob = await mcpAs(url, TOKENS.bob);
    const jobs = {
      alice: [
        await execute(alice, {
          code: `async () => {\n  // import leads from the sheet\n  for (let i = 1; i <= 600; i++) { await sleep(1000); progress(i, 600, 'importing'); }\n}`,
          wait_seconds: 2,
        }),
        await execute(alice, {
          code: `async () => (await crm.request({ method: 'GET', path: '/leads' })).length`,
          wait_seconds: 10,
        }),
        await execute(alice, {
          code: `async () => { throw new Error('bad row 12'); }`,
          name: 'fix duplicates',
          wait_seconds: 10,
        }),
      ],
      bob: [await execute(bob, { code: '// tidy up the CRM\nasync () => 2', wait_seconds: 10 })],
    };
    await alice.close();
    await bob.close();

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1500, height: 520 } });
      // The UI keeps its list columns per namespace in the browser's local storage.
      await page.addInitScript((columns: string[]) => {
        localStorage.setItem(
          'namespace-workflow-table-columns',
          JSON.stringify({ default: columns.map((label) => ({ label })) }),
        );
      }, COLUMNS);
      const query = encodeURIComponent(`DcmOwner = "alice"`);
      await page.goto(`http://127.0.0.1:${ui}/namespaces/default/workflows?query=${query}`, {
        waitUntil: 'networkidle',
      });
      await page.getByText(jobs.alice[0]).first().waitFor({ timeout: 30_000 });
      mkdirSync(dirname(screenshot), { recursive: true });
      await page.screenshot({ path: screenshot });
      const text = await page.innerText('main');
      const listed = [...jobs.alice, ...jobs.bob].filter((id) => text.includes(id));
      return { screenshot, listed, ...jobs, text };
    } finally {
      await browser.close();
    }
  } finally {
    await dev.stop();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!existsSync(CHROMIUM)) {
    console.error(`No Chromium at ${CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM to its path.`);
    process.exit(2);
  }
  const out = resolve(process.argv[2] ?? 'test-results/temporal-ui-jobs.png');
  const check = await checkTemporalUi(out);
  const ok = check.alice.every((id) => check.listed.includes(id)) && !check.bob.some((id) => check.listed.includes(id));
  console.log(`${ok ? 'ok' : 'NOT OK'}: alice's jobs listed: ${check.listed.join(', ')}; screenshot ${out}`);
  process.exit(ok ? 0 : 1);
}
