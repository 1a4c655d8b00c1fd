/** When a worker collects its garbage after rounds (cli/process-memory.ts): measured on this process's own heap. */
import { setImmediate as turn } from 'node:timers/promises';
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { afterRound, HEAP_GROWTH_BYTES, releaseStartupMemory, takeCollector } from '../../cli/process-memory.ts';

const used = () => v8.getHeapStatistics().used_heap_size;
const MB = 1024 * 1024;

/** `bytes` of garbage in V8's old generation (arrays this large go to its large-object space, which only a full collection frees). */
function garbage(bytes: number): void {
  let arrays: number[][] | undefined = Array.from({ length: Math.ceil(bytes / (8 * 100_000)) }, () =>
    new Array<number>(100_000).fill(1.5),
  );
  expect(arrays.length).toBeGreaterThan(0);
  arrays = undefined;
}

/**
 * After a full collection, leaves `bytes` of garbage and ends a round: the heap used before the
 * round's end, during it (synchronously after afterRound) and once the activity has returned.
 */
async function roundAfterGarbage(bytes: number, large: boolean) {
  releaseStartupMemory();
  garbage(bytes);
  const before = used();
  afterRound(large);
  const during = used();
  await turn();
  return { before, during, after: used() };
}

describe('collections after rounds', () => {
  takeCollector();

  it('leaves small rounds to V8 while the heap has grown less than the threshold', async () => {
    const { before, after } = await roundAfterGarbage(HEAP_GROWTH_BYTES / 4, false);
    expect(after).toBeGreaterThan(before - MB);
  });

  it('collects once the heap has grown past the threshold since the last collection', async () => {
    const { before, during, after } = await roundAfterGarbage(HEAP_GROWTH_BYTES * 2, false);
    expect(during).toBeGreaterThan(before - MB); // not during the round: once the activity has returned
    expect(after).toBeLessThan(before - HEAP_GROWTH_BYTES);
  });

  it('collects after a large round whatever the growth', async () => {
    const { before, after } = await roundAfterGarbage(HEAP_GROWTH_BYTES / 4, true);
    expect(after).toBeLessThan(before - HEAP_GROWTH_BYTES / 8);
  });
});
