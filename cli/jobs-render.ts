/** Jobs as a person reads them in a terminal: a table, a job's page, a progress line. Pure text. */
import type { Progress } from '../core/journal.ts';
import type { JobInfo, JobRow, JobView, ResumePreviewView } from '../jobs/service.ts';

/** `45s`, `12m 05s`, `3h 02m`, `2d 4h`. */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/** `2026-11-30 06:22` in local time: what a person compares with their clock. */
export function when(iso: string): string {
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function progressText(progress: Progress | null): string {
  if (!progress) return '-';
  const { done, total } = progress;
  if (total === null || total <= 0) return `${done}`;
  return `${done}/${total} (${Math.floor((100 * Math.min(done, total)) / total)}%)`;
}

/** `[#########...........]` for done out of total. */
export function bar(done: number, total: number, width = 24): string {
  const filled = Math.round((width * Math.min(Math.max(done, 0), total)) / total);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

/** One row per job, columns padded, the summary cut to the terminal's width. */
export function jobTable(rows: JobRow[], width = 120): string {
  if (rows.length === 0) return 'No jobs.';
  const head = ['JOB ID', 'STATUS', 'PROGRESS', 'ATTEMPT', 'OWNER', 'STARTED', 'DURATION', 'SUMMARY'];
  const cells = rows.map((r) => [
    r.job_id,
    r.status,
    progressText(r.progress),
    r.attempt === null ? '-' : String(r.attempt),
    r.owner ?? '-',
    when(r.started),
    duration(r.seconds),
    r.summary,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => {
    const fixed = c
      .slice(0, -1)
      .map((v, i) => v.padEnd(widths[i]))
      .join('  ');
    const room = Math.max(10, width - fixed.length - 2);
    const last = c.at(-1)!;
    return `${fixed}  ${last.length > room ? `${last.slice(0, room - 1)}…` : last}`.trimEnd();
  };
  return [line(head), ...cells.map(line)].join('\n');
}

/** A job's page: what it is, how far it got, and how it ended. */
export function jobPage(info: JobInfo, view: JobView, now = new Date()): string {
  const closed = info.closed ? new Date(info.closed) : now;
  const ran = (closed.getTime() - new Date(info.started).getTime()) / 1000;
  const rows: Array<[string, string]> = [
    ['summary', info.summary || '-'],
    ['owner', info.owner ?? '-'],
    ['started', `${when(info.started)}, ${info.closed ? 'ran' : 'running for'} ${duration(ran)}`],
  ];
  if (view.progress)
    rows.push([
      'progress',
      `${view.progress.total ? `${bar(view.progress.done, view.progress.total)} ` : ''}${progressText(view.progress)}${view.progress.message ? `  ${view.progress.message}` : ''}`,
    ]);
  if (view.rounds !== undefined)
    rows.push([
      'work',
      `${view.rounds} rounds, ${view.effects ?? 0} calls and sleeps, ${view.runs ?? 1} workflow run${(view.runs ?? 1) === 1 ? '' : 's'}`,
    ]);
  for (const [name, c] of Object.entries(view.ledger?.counts ?? {}))
    rows.push([
      'items',
      `${name}: ${c.done} done, ${c.failed} failed${c.uncertain ? `, ${c.uncertain} uncertain` : ''}${c.skipped ? `, ${c.skipped} skipped (done before)` : ''} of ${c.total}`,
    ]);
  if (view.ledger?.firstFailures.length)
    rows.push([
      'failures',
      [
        ...view.ledger.firstFailures.map(
          (f) =>
            `${f.ledger} ${f.key}: ${f.status === 'uncertain' ? 'uncertain' : `${f.error?.name}: ${f.error?.message}`}`,
        ),
        `(all of them: durable-codemode jobs ledger ${info.job_id} --failed)`,
      ].join('\n'),
    ]);
  for (const a of view.approvals?.pending ?? [])
    rows.push([
      'waits for',
      `${a.id}: ${a.question}${a.call ? ` (${a.call.provider} ${a.call.label})` : ''}  since ${when(a.since)}, denied at ${when(a.expires)} unless answered (jobs approve|deny ${info.job_id} --id ${a.id})`,
    ]);
  for (const a of view.approvals?.answered ?? [])
    rows.push([
      'answered',
      `${a.id}: ${a.question}  ${a.approved ? 'approved' : 'denied'} by ${a.by} (${a.via}) ${when(a.at)}${a.note ? `: ${a.note}` : ''}`,
    ]);
  if (view.divergence) rows.push(['resumed', `the new code diverged from the journal at ${view.divergence}`]);
  if (view.error)
    rows.push(['error', `${view.error.name}: ${view.error.message}${view.error.stack ? `\n${view.error.stack}` : ''}`]);
  if (view.logs.length)
    rows.push([
      'logs',
      `${view.log_count > view.logs.length ? `(last ${view.logs.length} of ${view.log_count} lines)\n` : ''}${view.logs.join('\n')}`,
    ]);
  if (view.result !== undefined) rows.push(['result', JSON.stringify(view.result, null, 2)]);
  if (view.note) rows.push(['note', view.note]);
  const indent = ' '.repeat(12);
  return [
    `${info.job_id}  ${view.status}${view.attempt && view.attempt > 1 ? ` (attempt ${view.attempt})` : ''}`,
    ...rows.map(([k, v]) => `  ${k.padEnd(10)}${v.split('\n').join(`\n${indent}`)}`),
  ].join('\n');
}

/** A resume preview (`jobs resume --dry-run`): what the next attempt would replay, send and skip. */
export function previewPage(p: ResumePreviewView): string {
  const rows: Array<[string, string]> = [
    ['journal', `${p.replay_rounds} of ${p.journal_rounds} rounds replay (nothing sent)`],
  ];
  if (p.divergence) rows.push(['diverges', p.divergence]);
  for (const r of p.live)
    rows.push([
      `round ${r.round}`,
      `${r.sent ? 'reads, sent for the preview' : 'would run live (not sent)'}: ${r.calls.join(', ')}${r.more ? ` and ${r.more} more` : ''}`,
    ]);
  for (const e of p.each)
    rows.push([
      'each()',
      `${e.ledger}: ${e.skip} skipped (done before), ${e.retry} retried${e.reconcile ? ` (${e.reconcile} reconciled first)` : ''}, ${e.new} new, of ${e.total}`,
    ]);
  if (p.ended)
    rows.push(['ends', p.ended === 'returned' ? 'the script returns' : `${p.ended.name}: ${p.ended.message}`]);
  rows.push(['note', p.note]);
  return [`${p.job_id}  preview of attempt ${p.attempt}`, ...rows.map(([k, v]) => `  ${k.padEnd(10)}${v}`)].join('\n');
}

/** Samples of progress over time, for the rate and the time left. */
export class ProgressRate {
  private readonly samples: Array<{ at: number; done: number }> = [];
  private readonly windowMs: number;

  constructor(windowMs = 20_000) {
    this.windowMs = windowMs;
  }

  add(done: number, at = Date.now()): void {
    const last = this.samples.at(-1);
    if (last && done < last.done) this.samples.length = 0; // a resumed attempt counts afresh
    this.samples.push({ at, done });
    while (this.samples.length > 2 && at - this.samples[0].at > this.windowMs) this.samples.shift();
  }

  /** Items per second over the window, once there is something to measure. */
  perSecond(): number | undefined {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at - first.at < 500 || last.done === first.done) return undefined;
    return ((last.done - first.done) * 1000) / (last.at - first.at);
  }
}

/** The live line of `jobs watch`: `running [####....] 75/250 (30%)  12.5/s  ETA 14s  importing leads`. */
export function watchLine(view: JobView, rate: number | undefined): string {
  const p = view.progress;
  if (!p) return `${view.status}  (no progress reported yet)`;
  const parts: string[] = [view.status];
  if (p.total) parts.push(bar(p.done, p.total));
  parts.push(progressText(p));
  if (rate !== undefined) {
    parts.push(`${rate >= 100 ? Math.round(rate) : rate.toFixed(1)}/s`);
    if (p.total && p.total > p.done) parts.push(`ETA ${duration((p.total - p.done) / rate)}`);
  }
  if (p.message) parts.push(p.message);
  return parts.join('  ');
}
