/**
 * MCP over stdio, for clients that spawn the server: one JSON-RPC message per line.
 *
 * Our own transport rather than the SDK's StdioServerTransport, which buffers a line by copying it
 * whole on every chunk (a 20 MB input took 45 s to arrive) and closes the connection on a line over
 * its limit. This one keeps a line's chunks until its newline, and answers a line too long to carry
 * an input within limits.maxInputBytes with the same InputTooLargeError as HTTP.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { type JSONRPCMessage, JSONRPCMessageSchema } from '@modelcontextprotocol/sdk/types.js';
import { maxRequestBytes, requestTooLarge } from '../jobs/input-limits.ts';
import { createMcpServer, type McpDeps } from './mcp.ts';

/** How much of a refused line is kept to find its request id (clients put it first or last). */
const ID_SEARCH_BYTES = 256;
const NEWLINE = 0x0a;

export class StdioLineTransport implements Transport {
  onmessage?: (message: JSONRPCMessage) => void;
  onerror?: (error: Error) => void;
  onclose?: () => void;
  private readonly maxLineBytes: number;
  private readonly tooLarge: () => Error;
  private readonly stdin: NodeJS.ReadableStream;
  private readonly stdout: NodeJS.WritableStream;
  /** The current line so far, while within the limit. */
  private chunks: Buffer[] = [];
  private bytes = 0;
  /** A line over the limit: its first and last bytes, for its id. */
  private refused?: { head: Buffer; tail: Buffer };

  constructor(
    maxLineBytes: number,
    tooLarge: () => Error,
    stdin: NodeJS.ReadableStream = process.stdin,
    stdout: NodeJS.WritableStream = process.stdout,
  ) {
    this.maxLineBytes = maxLineBytes;
    this.tooLarge = tooLarge;
    this.stdin = stdin;
    this.stdout = stdout;
  }

  start(): Promise<void> {
    this.stdin.on('data', this.onData);
    this.stdin.on('error', this.onError);
    this.stdin.on('end', this.onEnd);
    return Promise.resolve();
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve) => {
      if (this.stdout.write(`${JSON.stringify(message)}\n`)) resolve();
      else this.stdout.once('drain', resolve);
    });
  }

  close(): Promise<void> {
    this.stdin.off('data', this.onData);
    this.stdin.off('error', this.onError);
    this.stdin.off('end', this.onEnd);
    this.chunks = [];
    this.onclose?.();
    return Promise.resolve();
  }

  private readonly onError = (error: Error) => this.onerror?.(error);
  private readonly onEnd = () => void this.close();

  private readonly onData = (chunk: Buffer) => {
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end !== -1; end = chunk.indexOf(NEWLINE, start)) {
      this.take(chunk.subarray(start, end));
      this.endLine();
      start = end + 1;
    }
    if (start < chunk.length) this.take(chunk.subarray(start));
  };

  private take(part: Buffer): void {
    if (this.refused) {
      this.refused.tail = Buffer.concat([this.refused.tail, part]).subarray(-ID_SEARCH_BYTES);
      return;
    }
    this.bytes += part.length;
    this.chunks.push(part);
    if (this.bytes > this.maxLineBytes) {
      const line = Buffer.concat(this.chunks);
      this.refused = { head: line.subarray(0, ID_SEARCH_BYTES), tail: line.subarray(-ID_SEARCH_BYTES) };
      this.chunks = [];
    }
  }

  private endLine(): void {
    const { chunks, refused } = this;
    this.chunks = [];
    this.bytes = 0;
    this.refused = undefined;
    if (refused) {
      const { name, message } = this.tooLarge();
      void this.send({
        jsonrpc: '2.0',
        id: requestIdOf(refused.head, refused.tail),
        error: { code: -32000, message, data: { name } },
      } as unknown as JSONRPCMessage);
      return;
    }
    const line = Buffer.concat(chunks).toString('utf8').replace(/\r$/, '');
    if (!line.trim()) return;
    let message: JSONRPCMessage;
    try {
      message = JSONRPCMessageSchema.parse(JSON.parse(line));
    } catch (e) {
      this.onerror?.(e as Error);
      return;
    }
    this.onmessage?.(message);
  }
}

/** The id of a request line seen only in part: `{"jsonrpc":"2.0","id":7,...` or `...,"id":7}`; null if neither. */
function requestIdOf(head: Buffer, tail: Buffer): string | number | null {
  const id = String.raw`"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")`;
  const match =
    new RegExp(String.raw`^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?${id}`).exec(head.toString('utf8')) ??
    new RegExp(String.raw`,\s*${id}\s*\}\s*$`).exec(tail.toString('utf8'));
  return match ? (JSON.parse(match[1]) as string | number) : null;
}

/** Serves MCP on stdin/stdout; a line may be as long as the largest request whose input is within the limits. */
export async function serveStdio(deps: McpDeps): Promise<void> {
  const { limits } = deps.jobs;
  await createMcpServer(deps).connect(new StdioLineTransport(maxRequestBytes(limits), () => requestTooLarge(limits)));
}
