/** Stopping a long-running command on SIGINT/SIGTERM/SIGHUP, and undoing a start-up that failed half-way. */

/** Runs `stop` once on SIGINT, SIGTERM or SIGHUP, then exits; a second signal exits at once. */
export function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    console.error(`\n${signal} received: shutting down (press Ctrl-C again to force)...`);
    stop().then(
      () => process.exit(0),
      (e) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
  // Its terminal closed. Node resets SIGHUP to the default at start (nohup's ignoring it included),
  // which would end the process without stopping what it started.
  process.on('SIGHUP', () => handler('SIGHUP'));
}

/** What has been started so far, stopped in reverse order: by a failed start-up, or at shutdown. */
export class Started {
  private readonly stops: Array<{ what: string; stop: () => Promise<unknown> }> = [];

  add(what: string, stop: () => Promise<unknown>): void {
    this.stops.push({ what, stop });
  }

  private stopping: Promise<void> | undefined;

  /**
   * Stops everything (last started first); a part that fails to stop does not keep the others
   * running. Called again (a signal during a failed start-up), it waits for the same stop.
   */
  stopAll(): Promise<void> {
    return (this.stopping ??= this.stopInOrder());
  }

  private async stopInOrder(): Promise<void> {
    for (let next = this.stops.pop(); next; next = this.stops.pop()) {
      try {
        await next.stop();
      } catch (e) {
        console.error(`stopping ${next.what} failed: ${(e as Error).message}`);
      }
    }
  }
}
