/**
 * The ports `dev` listens on, settled before anything starts: a port asked for (or defaulted) that
 * something else holds is refused, naming the port, what it was for, the flag that changes it and a
 * port that is free now; 0 picks a free port, and `dev` prints which it picked.
 */
import { freePort, isPortFree } from '../temporal/ports.ts';
import { UsageError } from './options.ts';

export interface PortWanted {
  /** What listens there, e.g. "Temporal UI". */
  service: string;
  /** The flag that sets it, e.g. "--ui-port". */
  flag: string;
  host: string;
  /** 0: any free port. */
  port: number;
}

export interface PortPlanned extends PortWanted {
  /** True when dev chose it (the flag was 0). */
  picked: boolean;
}

/** How far above a taken port to look for a free one to suggest. */
const SUGGEST_WITHIN = 50;

export async function planPorts(wanted: PortWanted[], hint = ''): Promise<PortPlanned[]> {
  const asked = wanted.filter((w) => w.port !== 0);
  for (const w of asked) {
    const other = asked.find((o) => o !== w && o.port === w.port);
    if (other)
      throw new UsageError(
        `${w.flag} and ${other.flag} are both ${w.port}: the ${w.service} and the ${other.service} need ports of their own.`,
      );
  }
  const taken: PortWanted[] = [];
  for (const w of asked) if (!(await isPortFree(w.host, w.port))) taken.push(w);
  if (taken.length) {
    const inUse = new Set(asked.map((w) => w.port));
    const lines = [];
    for (const w of taken) {
      const suggestion = await freePortNear(w.host, w.port, inUse);
      if (suggestion) inUse.add(suggestion);
      lines.push(
        `  ${w.port} (${w.service}) is in use: change it with ${w.flag}${suggestion ? `, e.g. ${w.flag} ${suggestion} (free now)` : ''}`,
      );
    }
    throw new PortsTakenError(
      `dev cannot start: ${taken.length > 1 ? 'these ports are' : 'a port is'} already in use on this machine.\n${lines.join('\n')}\n` +
        `Or pass 0 (e.g. ${taken[0].flag} 0) to have dev pick a free port; it prints the ones it picked.${hint}`,
    );
  }
  const planned: PortPlanned[] = [];
  const chosen = new Set(asked.map((w) => w.port));
  for (const w of wanted) {
    if (w.port !== 0) {
      planned.push({ ...w, picked: false });
      continue;
    }
    let port = await freePort(w.host);
    while (chosen.has(port)) port = await freePort(w.host);
    chosen.add(port);
    planned.push({ ...w, port, picked: true });
  }
  return planned;
}

async function freePortNear(host: string, port: number, avoid: Set<number>): Promise<number | undefined> {
  for (let p = port + 1; p <= Math.min(port + SUGGEST_WITHIN, 65535); p++)
    if (!avoid.has(p) && (await isPortFree(host, p))) return p;
  return undefined;
}

export class PortsTakenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortsTakenError';
  }
}
