// A small in-memory CRM: the write target of the demo "lead import".
import { z } from 'zod';
import { HttpError, intParam, json, startHttpApi } from './http-api.ts';
import type { ApiResponse, HttpApi, Route, RouteRequest } from './http-api.ts';
import { CRM_SPEC } from './providers.ts';

export { CRM_SPEC_PATH } from './providers.ts';
export const MAX_BATCH = 100;

const leadInputSchema = z.strictObject({
  name: z.string().trim().min(1).max(200),
  email: z.string().max(320),
  phone: z.string().max(40).optional(),
  company: z.string().max(200).optional(),
  source: z.string().max(100).optional(),
});
const updateSchema = leadInputSchema
  .partial()
  .refine((fields) => Object.keys(fields).length > 0, { message: 'name at least one field to change' });
const batchSchema = z.strictObject({ leads: z.array(leadInputSchema).min(1) });
/** A well-formed request whose email is not an address is unprocessable (422), not malformed (400). */
const emailSchema = z.email();

export type LeadInput = z.infer<typeof leadInputSchema>;
export type Lead = LeadInput & { id: string; createdAt: string };
/** One lead's outcome in a `POST /leads/batch?partial=true` answer. */
export type BatchItemResult =
  { status: 201; lead: Lead } | { status: number; error: { code: string; message: string } };

export interface CrmApiOptions {
  port?: number;
  host?: string;
  latencyMs?: number;
  answerDelayMs?: number;
  failureRate?: number;
  seed?: number;
  requiredBearerToken?: string;
}

export interface CrmStats {
  requests: number;
  byRoute: Record<string, number>;
  leads: number;
  duplicateEmails: number;
  idempotentReplays: number;
  /** The Idempotency-Key of each replay, in arrival order: which writes were sent more than once. */
  replayedKeys: string[];
  maxInFlight: number;
  rejectedByFailureInjection: number;
}

/** A write the CRM applied or refused (not an idempotent replay, not an injected failure). */
export interface CrmWrite {
  route: string;
  status: number;
  /** The emails of the leads in the request body. */
  emails: string[];
  idempotencyKey?: string;
}

export interface CrmApi extends Omit<HttpApi, 'stats'> {
  stats(): CrmStats;
  /** Every write request that reached a handler, in arrival order: what an import sent. */
  writes(): CrmWrite[];
}

class LeadStore {
  leads = new Map<string, Lead>();
  /** Lower-cased email → number of stored leads with it; detects duplicates and serves `?email=`. */
  emailCounts = new Map<string, number>();
  nextId = 1;
  duplicateEmails = 0;

  create(input: LeadInput): Lead {
    const id = `lead_${String(this.nextId++).padStart(6, '0')}`;
    const lead: Lead = { id, ...input, createdAt: new Date().toISOString() };
    this.count(input.email);
    this.leads.set(id, lead);
    return lead;
  }

  update(lead: Lead, fields: Partial<LeadInput>): Lead {
    if (fields.email !== undefined) {
      this.uncount(lead.email);
      this.count(fields.email);
    }
    return Object.assign(lead, fields);
  }

  delete(id: string): boolean {
    const lead = this.leads.get(id);
    if (!lead) return false;
    this.uncount(lead.email);
    return this.leads.delete(id);
  }

  private count(email: string): void {
    const key = email.toLowerCase();
    const count = this.emailCounts.get(key) ?? 0;
    if (count > 0) this.duplicateEmails++;
    this.emailCounts.set(key, count + 1);
  }

  private uncount(email: string): void {
    const key = email.toLowerCase();
    this.emailCounts.set(key, (this.emailCounts.get(key) ?? 1) - 1);
  }
}

export async function startCrmApi(options: CrmApiOptions = {}): Promise<CrmApi> {
  let store = new LeadStore();
  /** Idempotency-Key → first response; pending promises make concurrent retries wait for it. */
  let idempotency = new Map<string, Promise<ApiResponse>>();
  let replayedKeys: string[] = [];
  let writes: CrmWrite[] = [];

  /** Logs the write with how it ended. */
  function logged(route: string, handle: Route['handle']): Route['handle'] {
    return async (request) => {
      const key = request.headers['idempotency-key'];
      const write: CrmWrite = {
        route,
        status: 0,
        emails: emailsOf(request.body),
        ...(typeof key === 'string' ? { idempotencyKey: key } : {}),
      };
      writes.push(write);
      try {
        const response = await handle(request);
        write.status = response.status;
        return response;
      } catch (error) {
        write.status = error instanceof HttpError ? error.status : 500;
        throw error;
      }
    };
  }

  function idempotent(route: string, handle: Route['handle']): Route['handle'] {
    const apply = logged(route, handle);
    return (request) => {
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string' || key === '') return apply(request);
      const stored = idempotency.get(key);
      if (stored) {
        replayedKeys.push(key);
        return stored.then((response) => ({
          ...response,
          headers: { ...response.headers, 'idempotent-replayed': 'true' },
        }));
      }
      const result = Promise.resolve(request).then(apply);
      idempotency.set(key, result);
      // Errors change nothing, so they are not remembered: a retry must run for real.
      result.catch(() => idempotency.delete(key));
      return result;
    };
  }

  /**
   * `?partial=true`: every valid lead is created and each gets its own result, in request order,
   * as bulk APIs answer (207 Multi-Status when some were refused).
   */
  function createEach(batch: LeadInput[]): ApiResponse {
    const results = batch.map((input, i): BatchItemResult => {
      try {
        return { status: 201, lead: store.create(validLead(input, `leads.${i}.`)) };
      } catch (error) {
        if (!(error instanceof HttpError)) throw error;
        return { status: error.status, error: { code: error.code, message: error.message } };
      }
    });
    const count = results.filter((r) => r.status === 201).length;
    return json(count === batch.length ? 201 : 207, { results, count });
  }

  function getLead({ params }: RouteRequest): Lead {
    const lead = store.leads.get(params.id);
    if (!lead) throw new HttpError(404, 'not_found', `lead ${params.id} not found`);
    return lead;
  }

  const routes: Route[] = [
    {
      method: 'GET',
      path: '/leads',
      handle({ query }) {
        const limit = intParam(query, 'limit', { fallback: 50, min: 1, max: 1000 });
        const offset = intParam(query, 'offset', { fallback: 0 });
        const email = query.get('email')?.toLowerCase();
        const all = [...store.leads.values()];
        const matching = email === undefined ? all : all.filter((lead) => lead.email.toLowerCase() === email);
        return json(200, { leads: matching.slice(offset, offset + limit), total: matching.length });
      },
    },
    {
      method: 'POST',
      path: '/leads',
      handle: idempotent('POST /leads', ({ body }) =>
        json(201, store.create(validLead(validate(leadInputSchema, body)))),
      ),
    },
    {
      method: 'POST',
      path: '/leads/batch',
      handle: idempotent('POST /leads/batch', ({ body, query }) => {
        // Checked before schema validation so the limit error reads plainly.
        const items = (body as { leads?: unknown } | null | undefined)?.leads;
        if (Array.isArray(items) && items.length > MAX_BATCH) {
          throw new HttpError(400, 'validation_error', `batch too large: max ${MAX_BATCH}`);
        }
        const batch = validate(batchSchema, body).leads;
        if (query.get('partial') === 'true') return createEach(batch);
        const leads = batch.map((lead, i) => validLead(lead, `leads.${i}.`));
        const created = leads.map((input) => store.create(input));
        return json(201, { created, count: created.length });
      }),
    },
    { method: 'GET', path: '/leads/{id}', handle: (request) => json(200, getLead(request)) },
    {
      method: 'PATCH',
      path: '/leads/{id}',
      handle: idempotent('PATCH /leads/{id}', (request) => {
        const fields = validate(updateSchema, request.body);
        if (fields.email !== undefined) validEmail(fields.email);
        return json(200, store.update(getLead(request), fields));
      }),
    },
    {
      method: 'DELETE',
      path: '/leads/{id}',
      handle: idempotent('DELETE /leads/{id}', (request) => {
        store.delete(getLead(request).id);
        return { status: 204 };
      }),
    },
  ];

  const api = await startHttpApi({ ...options, name: 'CRM demo API', spec: CRM_SPEC, routes });
  return {
    ...api,
    stats: () => ({
      ...api.stats(),
      leads: store.leads.size,
      duplicateEmails: store.duplicateEmails,
      idempotentReplays: replayedKeys.length,
      replayedKeys: [...replayedKeys],
    }),
    writes: () => writes.map((w) => ({ ...w, emails: [...w.emails] })),
    reset() {
      api.reset();
      store = new LeadStore();
      idempotency = new Map();
      replayedKeys = [];
      writes = [];
    },
  };
}

function validLead(lead: LeadInput, field = ''): LeadInput {
  validEmail(lead.email, field);
  return lead;
}

function validEmail(email: string, field = ''): void {
  if (!emailSchema.safeParse(email).success)
    throw new HttpError(422, 'invalid_email', `${field}email: not a valid email address: ${JSON.stringify(email)}`);
}

function emailsOf(body: unknown): string[] {
  const leads = (body as { leads?: unknown } | null | undefined)?.leads;
  const list: unknown[] = Array.isArray(leads) ? leads : [body];
  return list.flatMap((lead) => {
    const email = (lead as { email?: unknown } | null | undefined)?.email;
    return typeof email === 'string' ? [email] : [];
  });
}

function validate<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue.path.join('.') || 'body';
  throw new HttpError(400, 'validation_error', `${field}: ${issue.message}`);
}
