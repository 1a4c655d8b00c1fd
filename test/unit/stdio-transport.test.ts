/** MCP's stdio transport (server/stdio.ts): lines split and joined across chunks, and a line over the limit answered. */
import { PassThrough } from 'node:stream';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';
import { InputTooLargeError } from '../../jobs/input-limits.ts';
import { StdioLineTransport } from '../../server/stdio.ts';

function transport(maxLineBytes: number) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const t = new StdioLineTransport(maxLineBytes, () => new InputTooLargeError('too large'), stdin, stdout);
  const received: JSONRPCMessage[] = [];
  const errors: Error[] = [];
  t.onmessage = (m) => received.push(m);
  t.onerror = (e) => errors.push(e);
  let written = '';
  stdout.on('data', (d: Buffer) => (written += d.toString()));
  const settle = () => new Promise((r) => setImmediate(r));
  return {
    t,
    stdin,
    received,
    errors,
    answers: () =>
      written
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as unknown),
    settle,
  };
}

const request = (id: number, extra = '') => ({ method: 'ping', params: { extra }, jsonrpc: '2.0' as const, id });

describe('StdioLineTransport', () => {
  it('reads messages split across chunks and several in one chunk, with CRLF or LF', async () => {
    const { t, stdin, received, settle } = transport(1_000);
    await t.start();
    const text = `${JSON.stringify(request(1))}\r\n${JSON.stringify(request(2))}\n\n${JSON.stringify(request(3))}\n`;
    for (let i = 0; i < text.length; i += 7) stdin.write(text.slice(i, i + 7));
    await settle();
    expect(received).toEqual([request(1), request(2), request(3)]);
  });

  it('reads a line of 20 MB', async () => {
    const { t, stdin, received, settle } = transport(25_000_000);
    await t.start();
    const big = Buffer.from(`${JSON.stringify(request(4, 'x'.repeat(20_000_000)))}\n`);
    for (let i = 0; i < big.length; i += 65_536) stdin.write(big.subarray(i, i + 65_536));
    await settle();
    expect(received).toHaveLength(1);
    expect((received[0] as unknown as { params: { extra: string } }).params.extra).toHaveLength(20_000_000);
  });

  it('answers a line over the limit with the error and its id, whichever end holds it, and reads on', async () => {
    const { t, stdin, received, answers, settle } = transport(1_000);
    await t.start();
    stdin.write(`${JSON.stringify(request(5, 'x'.repeat(5_000)))}\n`);
    stdin.write(`{"jsonrpc":"2.0","id":"six","method":"ping","params":{"extra":"${'y'.repeat(5_000)}"}}\n`);
    stdin.write(`${JSON.stringify(request(7))}\n`);
    await settle();
    const error = { code: -32000, message: 'too large', data: { name: 'InputTooLargeError' } };
    expect(answers()).toEqual([
      { jsonrpc: '2.0', id: 5, error },
      { jsonrpc: '2.0', id: 'six', error },
    ]);
    expect(received).toEqual([request(7)]);
  });

  it('reports a line that is not a JSON-RPC message as an error, and reads on', async () => {
    const { t, stdin, received, errors, settle } = transport(1_000);
    await t.start();
    stdin.write(`not json\n${JSON.stringify(request(8))}\n`);
    await settle();
    expect(errors).toHaveLength(1);
    expect(received).toEqual([request(8)]);
  });
});
