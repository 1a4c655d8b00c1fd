/** Whether a TCP port can be had on a host, and a free one when any will do. */
import { createServer } from 'node:net';

/** Listens on `port` (0: any free one) and closes again; resolves the port it got, or undefined when it is taken. */
function tryListen(host: string, port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') resolve(undefined);
      else reject(new Error(`cannot check port ${port} on ${host}: ${e.message}`));
    });
    // exclusive: a port held by another process's cluster of workers counts as taken too.
    server.listen({ host, port, exclusive: true }, () => {
      const { port: got } = server.address() as { port: number };
      server.close(() => resolve(got));
    });
  });
}

/**
 * Whether `port` can be had on `host`. For loopback, on ::1 too: a server there would answer clients
 * that resolve `localhost` to ::1, and be taken for ours.
 */
export async function isPortFree(host: string, port: number): Promise<boolean> {
  if ((await tryListen(host, port)) === undefined) return false;
  if (host !== '127.0.0.1' && host !== 'localhost') return true;
  // A machine without IPv6 has no ::1 to listen on: nothing can be there either.
  return (await tryListen('::1', port).catch(() => port)) !== undefined;
}

/** A port nothing listens on right now (the kernel's pick). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const port = await tryListen(host, 0);
  if (port === undefined) throw new Error(`no free port on ${host}`);
  return port;
}
