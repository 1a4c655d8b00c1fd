/** Command-line values as parseArgs gives them, and the errors that mean "you typed it wrong" (exit code 2). */
export type Values = Record<string, string | boolean | undefined>;

export class UsageError extends Error {}

/** A whole number option in [min, max], or `fallback` when absent. */
export function intOption(values: Values, name: string, fallback: number, { min = 0, max = Infinity } = {}): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isInteger(n) || n < min || n > max)
    throw new UsageError(
      `--${name} must be a whole number${max < Infinity ? ` from ${min} to ${max}` : min > 0 ? ` of at least ${min}` : ''}; got ${String(raw)}`,
    );
  return n;
}

/** A TCP port option: 0 asks for a free one. */
export function portOption(values: Values, name: string, fallback: number): number {
  return intOption(values, name, fallback, { max: 65535 });
}
