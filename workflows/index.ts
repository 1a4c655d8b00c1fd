// The worker bundles this file: every workflow the product runs is exported here.
export { durableScript, jobStateQuery } from './durable-script.ts';
export { previewResume } from './preview.ts';
