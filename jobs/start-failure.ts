/**
 * Why Temporal did not start a job, said plainly: the cause and what to do, never the client's bare
 * "Failed to start Workflow" (whose cause, a gRPC status, it hides).
 */
import { ServiceError } from '@temporalio/client';
import { NamespaceNotFoundError } from '@temporalio/common';
import { ProductError } from '../core/errors.ts';
import type { TemporalConfig } from '../temporal/config.ts';

export class JobStartError extends ProductError {
  constructor(message: string, cause: unknown) {
    super('JobStartError', message, { cause });
  }
}

/** gRPC status codes Temporal answers with (from the gRPC spec). */
const GRPC = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The error to answer for a failed start: catalogued errors as they are, anything else as a JobStartError naming its cause. */
export function startFailure(e: unknown, temporal: Pick<TemporalConfig, 'address' | 'namespace'>): Error {
  if (e instanceof ProductError) return e;
  const where = `Temporal at ${temporal.address}`;
  if (e instanceof NamespaceNotFoundError)
    return new JobStartError(
      `${where} has no namespace "${e.namespace}", so no job was started. Register it (temporal operator namespace create) or set TEMPORAL_NAMESPACE.`,
      e,
    );
  const cause = (e instanceof ServiceError && e.cause ? e.cause : e) as Error & { code?: number; details?: string };
  const reason = cause.details || cause.message;
  const todo =
    cause.code === GRPC.UNAVAILABLE || cause.code === GRPC.DEADLINE_EXCEEDED
      ? 'Check that the Temporal server is running and reachable (TEMPORAL_ADDRESS), then try again.'
      : cause.code === GRPC.UNAUTHENTICATED || cause.code === GRPC.PERMISSION_DENIED
        ? 'Check the credentials the MCP server presents to Temporal (TEMPORAL_API_KEY, TEMPORAL_TLS_CLIENT_CERT_PATH).'
        : cause.code === GRPC.RESOURCE_EXHAUSTED || cause.code === GRPC.INVALID_ARGUMENT
          ? "Temporal refused the request itself (a limit of the server: request rate, message or payload size). Try again; if it persists, check the server's limits and logs."
          : "Try again; if it persists, check the Temporal server's logs.";
  return new JobStartError(`${where} did not start the job: ${reason}. No job was started. ${todo}`, e);
}
