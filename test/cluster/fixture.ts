/**
 * One native cluster per test file (test/native-cluster.ts), whose workers call a CRM demo API in
 * this process, so a test counts at the API every write the cluster makes, whatever is killed.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { type Config, loadConfig } from '../../cli/config.ts';
import { CRM_SPEC_PATH, startCrmApi, type CrmApi } from '../../demo-apis/crm.ts';
import { JobService, type JobView } from '../../jobs/service.ts';
import { dataConverter } from '../../temporal/codec.ts';
import { eventually } from '../harness.ts';
import { startNativeCluster, type NativeCluster } from '../native-cluster.ts';

const DEPLOY_CONFIG = fileURLToPath(new URL('../../deploy/config.json', import.meta.url));

export interface ClusterFixture {
  cluster: NativeCluster;
  crm: CrmApi;
  /** The cluster's product settings (deploy/config.json with the CRM above as the only provider). */
  config: Config;
  jobs: JobService;
  client: Client;
  /** POST /leads requests the CRM received, idempotent replays included. */
  posts(): number;
  close(): Promise<void>;
}

export async function startClusterFixture(): Promise<ClusterFixture> {
  const crm = await startCrmApi({ host: '127.0.0.1', latencyMs: 50 });
  const deploy = JSON.parse(readFileSync(DEPLOY_CONFIG, 'utf8')) as Record<string, unknown>;
  let cluster: NativeCluster;
  try {
    cluster = await startNativeCluster({
      config: { ...deploy, providers: { crm: { openapi: CRM_SPEC_PATH, baseUrl: crm.url } } },
    });
  } catch (e) {
    await crm.close();
    throw e;
  }
  const config = loadConfig(cluster.env.DURABLE_CODEMODE_CONFIG, {});
  // A fresh connection per call would hide nothing, but a long-lived one must ride out restarts,
  // which the SDK's connection does (it reconnects lazily).
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverter() });
  return {
    cluster,
    crm,
    config,
    client,
    jobs: new JobService(client, config),
    posts: () => crm.stats().byRoute['POST /leads'] ?? 0,
    async close() {
      await connection.close();
      await cluster.destroy();
      await crm.close();
    },
  };
}

/** `calls` sequential lead creates with unique emails, reporting progress after each. */
export function importScript(prefix: string, calls: number): string {
  return `async () => {
    for (let i = 0; i < ${calls}; i++) {
      await crm.request({ method: 'POST', path: '/leads', body: { name: '${prefix} ' + i, email: '${prefix}-' + i + '@example.com' } });
      progress(i + 1, ${calls});
    }
    return 'done';
  }`;
}

/** The job's final view; a cluster being restarted may refuse for a while, so errors are retried. */
export async function finished(jobs: JobService, jobId: string, ms = 240_000): Promise<JobView> {
  return eventually(
    async () => {
      try {
        const view = await jobs.status(jobId, 10);
        return view.status === 'running' ? undefined : view;
      } catch {
        return undefined;
      }
    },
    ms,
    `job ${jobId} to finish`,
  );
}
