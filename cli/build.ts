/**
 * The build step (`npm run build`; `make dev`, `npm run dev` and the Docker image's build run it):
 * the CLI compiled to JavaScript in dist/js/ (cli/compile.ts), and the workflow bundles in
 * dist/workflow-bundles/ (temporal/workflow-bundle.ts). Each is skipped when what is there was
 * built from the sources as they are now. With --cli-only (the launcher, bin/durable-codemode),
 * the CLI only. Reports on stderr: stdout stays the next command's.
 */
import { COMPILED_DIR, compileCli } from './compile.ts';
import { buildWorkflowBundles } from '../temporal/workflow-bundle.ts';

const started = performance.now();
const compiled = await compileCli();
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
console.error(`${COMPILED_DIR} ${compiled ? `(compiled in ${seconds(performance.now() - started)})` : '(up to date)'}`);
if (!process.argv.includes('--cli-only'))
  for (const { path, builtInMs } of await buildWorkflowBundles())
    console.error(`${path} ${builtInMs === undefined ? '(up to date)' : `(built in ${seconds(builtInMs)})`}`);
