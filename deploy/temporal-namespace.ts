/**
 * Registers the product's namespace and its search attributes (core/search-attributes.ts) on a
 * self-hosted Temporal server, once the server answers, and waits until both are usable. Safe to run
 * on every start: what exists is kept. The compose `temporal-namespace` job and the native
 * deployment (deploy/native/cluster.sh) both run it.
 *
 *   node deploy/temporal-namespace.ts [--retention-days N]
 *
 * The address and namespace are the product's own (DURABLE_CODEMODE_CONFIG, TEMPORAL_ADDRESS,
 * TEMPORAL_NAMESPACE, ...), so the namespace registered is the one the workers use.
 */
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';
import { msToTs } from '@temporalio/common/lib/time.js';
import { loadConfig } from '../cli/config.ts';
import { SEARCH_ATTRIBUTES } from '../core/search-attributes.ts';
import { connectClient } from '../temporal/connection.ts';

const WAIT_MS = 120_000;
const NOT_FOUND = 5; // gRPC status

const { values } = parseArgs({ options: { 'retention-days': { type: 'string', default: '7' } } });
const retentionDays = Number(values['retention-days']);
if (!Number.isInteger(retentionDays) || retentionDays < 1) {
  console.error(`--retention-days must be a whole number of days, got ${values['retention-days']}`);
  process.exit(2);
}

const { temporal } = loadConfig(process.env.DURABLE_CODEMODE_CONFIG);
const { namespace } = temporal;
const deadline = Date.now() + WAIT_MS;

/** Retries `step` while the server refuses (a fresh one does for a while), until the deadline. */
async function patiently<T>(what: string, step: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await step();
    } catch (e) {
      const refused =
        typeof (e as { code?: unknown }).code === 'number' || /Could not reach/.test((e as Error).message);
      if (!refused) throw e;
      if (Date.now() > deadline)
        throw new Error(`${what} still failing after ${WAIT_MS / 1000} s: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

async function ensureNamespace(client: Client): Promise<void> {
  try {
    await client.workflowService.describeNamespace({ namespace });
    return;
  } catch (e) {
    if ((e as { code?: number }).code !== NOT_FOUND) throw e;
  }
  await client.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs(`${retentionDays} days`),
  });
  console.log(`namespace ${namespace} registered (retention ${retentionDays} days)`);
}

async function ensureSearchAttributes(client: Client): Promise<void> {
  const { customAttributes } = await client.connection.operatorService.listSearchAttributes({ namespace });
  const missing = SEARCH_ATTRIBUTES.filter(({ name }) => customAttributes?.[name] === undefined);
  for (const { name, type } of SEARCH_ATTRIBUTES) {
    const existing = customAttributes?.[name];
    if (existing !== undefined && existing !== encodeSearchAttributeIndexedValueType(type))
      throw new Error(
        `search attribute ${name} exists in namespace ${namespace} with another type than ${type}; remove it (temporal operator search-attribute remove) and run this again`,
      );
  }
  if (missing.length === 0) return;
  await client.connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(
      missing.map(({ name, type }) => [name, encodeSearchAttributeIndexedValueType(type)!]),
    ),
  });
  console.log(`search attributes ${missing.map((a) => a.name).join(', ')} added to ${namespace}`);
}

const client = await patiently(`connecting to Temporal at ${temporal.address}`, () => connectClient(temporal));
try {
  await patiently('registering the namespace', () => ensureNamespace(client));
  await patiently('adding the search attributes', () => ensureSearchAttributes(client));
  // The frontend learns new namespaces and attributes from its caches; a query naming every
  // attribute succeeds once jobs can be started and listed.
  const query = SEARCH_ATTRIBUTES.map(({ name }) => `${name} IS NULL`).join(' AND ');
  await patiently('listing jobs by the search attributes', () =>
    client.workflowService.countWorkflowExecutions({ namespace, query }),
  );
  console.log(`namespace ${namespace} and its search attributes are ready`);
} finally {
  await client.connection.close();
}
