/**
 * What a job went through after a fault (a worker killed or frozen), for the benches and fault
 * tests: the timeouts Temporal recorded from that moment on, and which writes may have been in
 * flight, the only ones a job may send again (reported uncertain).
 */
import { decodeTimeoutType } from '@temporalio/common';
import type { HistoryEvent } from './histories.ts';

export const eventMs = (e: HistoryEvent) =>
  Number(String(e.eventTime?.seconds ?? 0)) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;

/** The timeouts recorded from `sinceEpochMs` on, as `+2.0 s runRound HEARTBEAT` (seconds since then). */
export function timeoutsSince(events: HistoryEvent[], sinceEpochMs: number): string[] {
  const activityTypes = new Map<string, string>();
  const timeouts: string[] = [];
  for (const event of events) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) activityTypes.set(String(event.eventId), scheduled.activityType?.name ?? 'activity');
    if (eventMs(event) < sinceEpochMs) continue;
    const at = `+${((eventMs(event) - sinceEpochMs) / 1000).toFixed(1)} s`;
    const activity = event.activityTaskTimedOutEventAttributes;
    if (activity)
      timeouts.push(
        `${at} ${activityTypes.get(String(activity.scheduledEventId))} ${decodeTimeoutType(activity.failure?.timeoutFailureInfo?.timeoutType)}`,
      );
    const task = event.workflowTaskTimedOutEventAttributes;
    if (task) timeouts.push(`${at} workflow task ${decodeTimeoutType(task.timeoutType)}`);
  }
  return timeouts;
}

/**
 * The Idempotency-Keys (`job:position:hash`) a job with one call at a time may have had in flight
 * at a fault: the last write to arrive before it (its response unseen), or the next one (its
 * intent recorded, its bytes not all sent). Any other key sent twice is a stale attempt sending.
 */
export function inFlightAt(lastArrivedKey: string | undefined): (key: string) => boolean {
  const last = lastArrivedKey === undefined ? -1 : positionOf(lastArrivedKey);
  return (key) => positionOf(key) === last || positionOf(key) === last + 1;
}

function positionOf(key: string): number {
  const position = /:(\d+):[^:]*$/.exec(key)?.[1];
  if (position === undefined) throw new Error(`"${key}" is not an Idempotency-Key of a job's call (job:position:hash)`);
  return Number(position);
}
