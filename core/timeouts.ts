/**
 * The timeouts that bound how fast a job notices a lost worker, shared by the workflow (which sets
 * them on its activities) and the activities (which must know when Temporal has given an attempt
 * up). Plain numbers: bundled into workflow code.
 */

/** How long a live session's worker may take to pick up the next round before the job replays elsewhere. */
export const SESSION_PICKUP_TIMEOUT_MS = 2_000;

/** A worker dying (or freezing) with a round or a call in flight is noticed within this. */
export const CALL_HEARTBEAT_TIMEOUT_MS = 2_000;

/** The workers' maxHeartbeatThrottleInterval: a heartbeat recorded now reaches the server within this. */
export const HEARTBEAT_THROTTLE_MS = 500;

/**
 * A job's workflow task must complete within this: a task taken by a frozen worker's open poll is
 * handed to another worker after it, so it bounds how long a frozen worker holds a job up. A task
 * is short, but a worker without the job in its cache replays the run's history first (measured
 * 0.7-1.5 ms per event on 2 cores loaded 10-fold): 3 ms per event of `maxEventsPerRun`, at least
 * 3 s (Temporal's default is 10 s), at most Temporal's limit of 120 s.
 */
export function workflowTaskTimeoutMs(maxEventsPerRun: number): number {
  return Math.min(120_000, Math.max(3_000, maxEventsPerRun * 3));
}

/**
 * A job cached on a dead or frozen worker waits this long before any worker takes its next workflow
 * task. A live worker takes its sticky tasks within milliseconds; one too busy to within 1 s hands
 * the task to another worker, which replays the run's history (at most `maxEventsPerRun` events)
 * and sends the round to the session's holder: slower, never wrong. 2 s before: kill to progress
 * 4.2-4.4 s, now 3.3-3.4 s (bench/README.md, "Frozen workers").
 */
export const STICKY_PICKUP_TIMEOUT_MS = 1_000;
