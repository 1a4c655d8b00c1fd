/**
 * The build step: bundles the workflow code into dist/workflow-bundles/ (or DIR), unless bundles of
 * the code as it is now are already there. `npm run build`, or `node --no-node-snapshot
 * temporal/build-workflow-bundles.ts [DIR]`; the Docker image runs it at build time.
 */
import { buildWorkflowBundles } from './workflow-bundle.ts';

for (const { path, builtInMs } of await buildWorkflowBundles(process.argv[2])) {
  console.log(`${path} ${builtInMs === undefined ? '(up to date)' : `(built in ${(builtInMs / 1000).toFixed(1)} s)`}`);
}
