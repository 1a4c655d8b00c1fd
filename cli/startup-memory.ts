/**
 * Starting `serve` or a worker leaves tens of MB of garbage in V8's heap (loading modules, parsing
 * the config and the specs, creating the Temporal workers) that V8 may keep committed for as long
 * as the process idles. One last-resort collection once it is ready gives that back, so an idle
 * process holds only what it uses. Node has no call for it: --expose-gc is on just long enough to
 * take gc() from a fresh context. No sandbox context may be created meanwhile (it would get gc()
 * too), so it runs before a worker polls, and in `serve`, which runs no jobs.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

export function releaseStartupMemory(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (options: object) => void;
  v8.setFlagsFromString('--no-expose-gc');
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}
