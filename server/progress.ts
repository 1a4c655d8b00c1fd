/**
 * MCP progress notifications while a tool waits for a job: one when the job starts (carrying its
 * id, so a client that gives up still learns it), one on every change of the job's progress or
 * phase, and one at least every KEEPALIVE_MS, so clients that reset their request timeout on
 * progress keep waiting.
 *
 * `progress` must grow with every notification (the protocol says so) while a job's own count may
 * stand still or restart: it is the job's `done` when that is ahead, else a small step past the
 * last value sent; `message` says what the job does ("120 / 1000 — importing leads", or the question
 * it waits on).
 */
import type { ProgressToken, ServerNotification } from '@modelcontextprotocol/sdk/types.js';
import type { JobView } from '../jobs/service.ts';

export const KEEPALIVE_MS = 10_000;
/** How far a notification whose job count did not advance moves `progress` on. */
const STEP = 0.001;

export type SendNotification = (notification: ServerNotification) => Promise<void>;
/** The model boundary for text (privacy: personal data in a progress message becomes the caller's tokens). */
export type ShowText = (text: string) => Promise<string>;

export class ProgressReporter {
  private readonly token: ProgressToken;
  private readonly send: SendNotification;
  private readonly show: ShowText;
  private last = -1;
  private lastSentAt = 0;
  private lastMessage = '';

  constructor(token: ProgressToken, send: SendNotification, show: ShowText) {
    this.token = token;
    this.send = send;
    this.show = show;
  }

  /** A reporter for a request that asked for progress (`_meta.progressToken`), else undefined. */
  static for(
    meta: { progressToken?: ProgressToken } | undefined,
    send: SendNotification,
    show: ShowText,
  ): ProgressReporter | undefined {
    return meta?.progressToken === undefined ? undefined : new ProgressReporter(meta.progressToken, send, show);
  }

  /** The job was started: its id goes out before anything can time out. */
  started(jobId: string): Promise<void> {
    return this.notify(undefined, undefined, `job ${jobId} started`);
  }

  /** The job's current view: sent when something changed, or when the keep-alive is due. */
  async observe(view: JobView): Promise<void> {
    const message = describe(view);
    const changed = message !== this.lastMessage;
    if (!changed && Date.now() - this.lastSentAt < KEEPALIVE_MS) return;
    await this.notify(view.progress?.done, view.progress?.total ?? undefined, message);
  }

  private async notify(done: number | undefined, total: number | undefined, message: string): Promise<void> {
    const ahead = done !== undefined && done > this.last;
    const progress = ahead ? done : Math.max(0, this.last + STEP);
    this.last = progress;
    this.lastSentAt = Date.now();
    this.lastMessage = message;
    await this.send({
      method: 'notifications/progress',
      params: {
        progressToken: this.token,
        progress,
        ...(ahead && total !== undefined ? { total } : {}),
        message: await this.show(message),
      },
    });
  }
}

/** One line about what the job is doing. */
export function describe(view: JobView): string {
  const pending = view.approvals?.pending ?? [];
  if (pending.length > 0) {
    const questions = pending.map((a) => `"${a.question}"`).join(', ');
    return `job ${view.job_id} waits for approval: ${questions}`;
  }
  const p = view.progress;
  if (!p) return `job ${view.job_id} ${view.status}`;
  return `job ${view.job_id} ${view.status}: ${p.done}${p.total !== null ? ` / ${p.total}` : ''}${p.message ? ` — ${p.message}` : ''}`;
}
