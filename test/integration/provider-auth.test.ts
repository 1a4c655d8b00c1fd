/**
 * Provider credentials from the worker's environment, against the demo CRM requiring a bearer
 * token, and on the paths where a secret could slip into a message: a wrong token (401), a query
 * credential for an API that is down (retried, then failed), a header credential no HTTP header can
 * carry. The secrets appear nowhere in the job's answer or its whole Temporal history.
 * (Header and query credentials on a working API are covered by test/credentials.test.ts.)
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CRM_SPEC_PATH, startCrmApi, type CrmApi } from '../../demo-apis/crm.ts';
import { startInProcessStack, testConfig, type InProcessStack } from '../harness.ts';

const SECRETS = {
  TEST_CRM_TOKEN: `crm-token-${randomUUID()}`,
  TEST_CRM_WRONG_TOKEN: `wrong-token-${randomUUID()}`,
  TEST_DOWN_QUERY_KEY: `down-key-${randomUUID()}`,
  TEST_BAD_HEADER_KEY: `bad-key-${randomUUID()}\nX-Injected: 1`,
};

let crm: CrmApi;
let stack: InProcessStack;

/** A port nothing listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  // The in-process worker reads credentials from this process's environment.
  Object.assign(process.env, SECRETS);
  crm = await startCrmApi({ requiredBearerToken: SECRETS.TEST_CRM_TOKEN });
  const down = `http://127.0.0.1:${await closedPort()}`;
  const retry = { maximumAttempts: 2, initialIntervalMs: 100, maximumIntervalMs: 100 };
  stack = await startInProcessStack(
    testConfig({
      providers: {
        crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url, auth: { type: 'bearer', tokenEnv: 'TEST_CRM_TOKEN' } },
        crmWrongToken: {
          openapi: CRM_SPEC_PATH,
          baseUrl: crm.url,
          auth: { type: 'bearer', tokenEnv: 'TEST_CRM_WRONG_TOKEN' },
        },
        downApi: {
          openapi: CRM_SPEC_PATH,
          baseUrl: down,
          auth: { type: 'query', param: 'api_key', valueEnv: 'TEST_DOWN_QUERY_KEY' },
          retry,
        },
        badHeaderApi: {
          openapi: CRM_SPEC_PATH,
          baseUrl: crm.url,
          auth: { type: 'header', header: 'X-Api-Key', valueEnv: 'TEST_BAD_HEADER_KEY' },
        },
      },
    }),
  );
});

afterAll(async () => {
  await stack?.close();
  await crm?.close();
  for (const name of Object.keys(SECRETS)) delete process.env[name];
});

it('authenticates with secrets from the environment, and no secret reaches the answer, the logs or the history', async () => {
  const view = await stack.jobs.execute({
    code: `async () => {
      const created = await crm.request({ method: 'POST', path: '/leads', body: { name: 'Ada', email: 'ada@example.com' } });
      const listed = await crm.request({ method: 'GET', path: '/leads' });
      const failures = {};
      for (const [name, call] of Object.entries({
        wrongToken: () => crmWrongToken.request({ method: 'GET', path: '/leads' }),
        down: () => downApi.request({ method: 'GET', path: '/leads' }),
        badHeader: () => badHeaderApi.request({ method: 'GET', path: '/leads' }),
      })) {
        try {
          await call();
          failures[name] = 'succeeded';
        } catch (e) {
          failures[name] = { name: e.name, status: e.status, message: e.message };
          console.log(name, e.message);
        }
      }
      return { created: created.id, listed: listed.leads.length, failures };
    }`,
    waitSeconds: 60,
  });
  expect(view.status, JSON.stringify(view)).toBe('completed');
  expect(view.result).toMatchObject({
    created: expect.stringMatching(/^lead_/),
    listed: 1,
    failures: {
      wrongToken: { name: 'ApiError', status: 401 },
      down: {
        name: 'ApiError',
        message: expect.stringMatching(/^downApi: GET \/leads failed after \d+ attempt\(s\): GET \/leads: /),
      },
      badHeader: {
        name: 'RequestError',
        message:
          "badHeaderApi: GET /leads refused: the provider's credential in TEST_BAD_HEADER_KEY cannot be sent in an HTTP header (it holds a line break, a NUL or a character beyond Latin-1): fix the variable",
      },
    },
  });
  expect(view.logs).toHaveLength(3);
  expect(crm.stats().requests).toBe(3); // create, list, and the wrong token's 401

  const history = await stack.client.workflow.getHandle(view.job_id).fetchHistory();
  // Payload bytes arrive as Uint8Array or as base64 text, depending on how the history was read.
  const historyText = JSON.stringify(history, (key, v: unknown) =>
    v instanceof Uint8Array
      ? Buffer.from(v).toString('utf8')
      : key === 'data' && typeof v === 'string'
        ? Buffer.from(v, 'base64').toString('utf8')
        : v,
  );
  // The scan is real: the decoded history holds the script and the failures it caught.
  expect(historyText).toContain('crmWrongToken.request');
  expect(historyText).toContain('failed after 2 attempt(s)');
  for (const [name, secret] of Object.entries(SECRETS)) {
    const token = secret.split('\n')[0];
    expect(JSON.stringify(view).includes(token), `${name} in the job's answer`).toBe(false);
    expect(historyText.includes(token), `${name} in the Temporal history`).toBe(false);
    expect(historyText.includes(encodeURIComponent(token)), `${name} (URL-encoded) in the Temporal history`).toBe(
      false,
    );
    expect(
      JSON.stringify(history).includes(Buffer.from(token).toString('base64')),
      `${name} (base64) in the Temporal history`,
    ).toBe(false);
  }
});
