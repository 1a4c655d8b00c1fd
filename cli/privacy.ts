/**
 * `durable-codemode privacy purge PRINCIPAL`: the operator deletes a principal's privacy vault from
 * the blob store every worker and MCP server shares, so its tokens stop restoring everywhere.
 */
import { createBlobStore } from '../blobs/index.ts';
import { Privacy } from '../privacy/privacy.ts';
import { codecKeyFromEnv } from '../temporal/codec.ts';
import { UsageError, type Values } from './options.ts';
import { configOf } from './runtime-config.ts';

export async function run(values: Values, args: string[], help: string): Promise<void> {
  const [action, principal, ...extra] = args;
  if (action !== 'purge' || !principal || extra.length > 0) throw new UsageError(help);
  const config = configOf(values);
  const store = createBlobStore(config.blobs, config.dataDir);
  const privacy = new Privacy(config.privacy, { store, codecKey: codecKeyFromEnv() });
  const deleted = await privacy.purge(principal);
  console.log(
    deleted > 0
      ? `Purged ${principal}'s privacy vault (${deleted} record(s)): its tokens no longer restore on any worker.`
      : `${principal} has no privacy vault in ${store.location}: nothing to purge (check --config names the shared blob store).`,
  );
}
