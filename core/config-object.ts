/**
 * Config sections are strict objects: a key the product does not know is an error naming the closest
 * known key, never silently dropped (a misspelt `provider` would otherwise leave the product without
 * providers). Each folder builds its section with this (cli/config.ts composes them).
 */
import { z } from 'zod';

export function configObject<Shape extends z.ZodRawShape>(shape: Shape) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? unknownKeysMessage(issue.keys, known) : undefined),
  });
}

/** `unknown key "provider" (did you mean "providers"?)`, or the valid keys when none is close. */
export function unknownKeysMessage(keys: readonly string[], known: readonly string[]): string {
  return keys
    .map((key) => {
      const near = closest(key, known);
      return `unknown key "${key}" (${near ? `did you mean "${near}"?` : `valid keys: ${known.join(', ')}`})`;
    })
    .join('; ');
}

/** The known key `key` most likely misspells: same but for case, one contains or abbreviates the other, or a few edits away. */
export function closest(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const n = name.toLowerCase();
    const distance = n === k ? 0 : contains(n, k) || contains(k, n) || abbreviates(k, n) ? 1 : editDistance(k, n);
    if (distance <= Math.max(2, Math.floor(k.length / 3)) && (!best || distance < best.distance))
      best = { name, distance };
  }
  return best?.name;
}

const contains = (long: string, short: string) => short.length >= 3 && long.includes(short);

/** `maxAttempts` for `maximumAttempts`: every letter in order, sharing the first. */
function abbreviates(short: string, long: string): boolean {
  if (short.length < 4 || short[0] !== long[0]) return false;
  let i = 0;
  for (const c of long) if (c === short[i]) i++;
  return i === short.length;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}
