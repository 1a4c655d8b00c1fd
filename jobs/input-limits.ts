/**
 * How large a job's input may be (`limits.maxInputBytes`), checked before any job starts, and the
 * largest MCP request that can carry an acceptable script and input: the HTTP body limit and the
 * stdio line limit follow it, so every transport refuses the same inputs with the same error.
 */
import { ProductError } from '../core/errors.ts';
import type { SandboxLimits } from '../core/limits.ts';

export class InputTooLargeError extends ProductError {
  constructor(message: string) {
    super('InputTooLargeError', message);
  }
}

const ADVICE =
  'No job was started. Pass less data (the script can fetch it from an API, or split the work into several jobs), or raise limits.maxInputBytes.';

/** `1,234,567 bytes (1.2 MiB)`, or `2,002 bytes` */
export function sizeText(bytes: number): string {
  const mib = bytes / 1024 / 1024;
  return `${bytes.toLocaleString('en-US')} bytes${mib >= 1 ? ` (${mib.toFixed(1)} MiB)` : ''}`;
}

/** Throws InputTooLargeError when the input's JSON is larger than `limits.maxInputBytes`. */
export function checkInputSize(input: unknown, limits: Pick<SandboxLimits, 'maxInputBytes'>): void {
  if (input === undefined) return;
  const bytes = Buffer.byteLength(JSON.stringify(input));
  if (bytes > limits.maxInputBytes)
    throw new InputTooLargeError(
      `The input is ${sizeText(bytes)} of JSON; the limit is ${sizeText(limits.maxInputBytes)} (limits.maxInputBytes). ${ADVICE}`,
    );
}

/** Room for the JSON-RPC envelope and the other arguments, beside the input and the script. */
const ENVELOPE_BYTES = 64 * 1024;

/**
 * The largest request that can carry an input and a script within the limits: the script's JSON
 * escaping takes at most 6 bytes per byte (`\u0000`).
 */
export function maxRequestBytes(limits: Pick<SandboxLimits, 'maxInputBytes' | 'maxScriptBytes'>): number {
  return limits.maxInputBytes + 6 * limits.maxScriptBytes + ENVELOPE_BYTES;
}

/** What a request larger than maxRequestBytes gets: its input cannot be within the limit. */
export function requestTooLarge(limits: Pick<SandboxLimits, 'maxInputBytes' | 'maxScriptBytes'>): InputTooLargeError {
  return new InputTooLargeError(
    `The request is larger than ${sizeText(maxRequestBytes(limits))}, so its input is over the limit of ${sizeText(limits.maxInputBytes)} (limits.maxInputBytes). ${ADVICE}`,
  );
}
