/**
 * Temporal connection settings by the SDK's environment configuration (@temporalio/envconfig):
 * the variables and TOML profiles resolved into connection options, an API key reaching the suite's
 * dev server, and TLS with a client certificate and an API key reaching a TLS gRPC endpoint on
 * loopback (the dev server speaks no TLS), for both the client and the worker's connection.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { ConfigError, parseConfig } from '../../cli/config.ts';
import { connectClient, connectWorker, temporalConnectionOptions } from '../../temporal/connection.ts';

const TLS = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));
const pem = (name: string) => new Uint8Array(readFileSync(join(TLS, name)));

/** The options the product would connect with, from this environment and config file content. */
function resolve(env: Record<string, string>, file: Record<string, unknown> = {}) {
  const config = parseConfig(file, undefined, env);
  return { namespace: config.temporal.namespace, options: temporalConnectionOptions(config.temporal, env) };
}

function tomlFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'dcm-temporal-')), 'temporal.toml');
  writeFileSync(file, text);
  return file;
}

const TOML = `
[profile.default]
address = "toml-default:7233"

[profile.cloud]
address = "my-ns.a1b2c.tmprl.cloud:7233"
namespace = "my-ns.a1b2c"
api_key = "from-toml"
`;

describe('Temporal connection settings', () => {
  it('defaults to localhost:7233, namespace "default", no TLS', () => {
    expect(resolve({})).toEqual({ namespace: 'default', options: { address: 'localhost:7233' } });
  });

  it('takes the config file as defaults beneath TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE', () => {
    const file = { temporal: { address: 'temporal.internal:7233', namespace: 'jobs' } };
    expect(resolve({}, file)).toMatchObject({ namespace: 'jobs', options: { address: 'temporal.internal:7233' } });
    expect(resolve({ TEMPORAL_ADDRESS: 'other:7233', TEMPORAL_NAMESPACE: 'prod' }, file)).toMatchObject({
      namespace: 'prod',
      options: { address: 'other:7233' },
    });
  });

  it('reads the TOML profile named by TEMPORAL_PROFILE, under the environment and over the config file', () => {
    const file = { temporal: { address: 'from-config-file:7233' } };
    const toml = tomlFile(TOML);
    expect(resolve({ TEMPORAL_CONFIG_FILE: toml }, file).options.address).toBe('toml-default:7233');
    // An API key alone turns TLS on, as Temporal Cloud needs.
    expect(resolve({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'cloud' }, file)).toEqual({
      namespace: 'my-ns.a1b2c',
      options: { address: 'my-ns.a1b2c.tmprl.cloud:7233', apiKey: 'from-toml', tls: true },
    });
    expect(
      resolve({
        TEMPORAL_CONFIG_FILE: toml,
        TEMPORAL_PROFILE: 'cloud',
        TEMPORAL_API_KEY: 'from-env',
        TEMPORAL_NAMESPACE: 'other',
      }),
    ).toMatchObject({
      namespace: 'other',
      options: { address: 'my-ns.a1b2c.tmprl.cloud:7233', apiKey: 'from-env', tls: true },
    });
    expect(() => resolve({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'staging' })).toThrow(ConfigError);
    expect(() => resolve({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'staging' })).toThrow(
      /Profile 'staging' not found.*TEMPORAL_PROFILE/,
    );
  });

  it('loads client certificates, the server CA and the server name from TEMPORAL_TLS_*', () => {
    const { options } = resolve({
      TEMPORAL_ADDRESS: 'temporal.example.com:7233',
      TEMPORAL_TLS_CLIENT_CERT_PATH: join(TLS, 'client.pem'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: join(TLS, 'client-key.pem'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(TLS, 'ca.pem'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
      TEMPORAL_GRPC_META_X_TENANT: 'acme',
    });
    expect(options).toEqual({
      address: 'temporal.example.com:7233',
      tls: {
        clientCertPair: { crt: pem('client.pem'), key: pem('client-key.pem') },
        serverRootCACertificate: pem('ca.pem'),
        serverNameOverride: 'temporal.test',
      },
      metadata: { 'x-tenant': 'acme' },
    });
    expect(resolve({ TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' }).options).toEqual({
      address: 'localhost:7233',
      apiKey: 'k',
      tls: false,
    });
  });

  it('names the certificate file it cannot read', () => {
    const config = parseConfig({}, undefined, {});
    expect(() =>
      temporalConnectionOptions(config.temporal, {
        TEMPORAL_TLS_CLIENT_CERT_PATH: '/nonexistent/client.pem',
        TEMPORAL_TLS_CLIENT_KEY_PATH: '/nonexistent/key.pem',
      }),
    ).toThrow(/Invalid Temporal connection settings: .*\/nonexistent\/.*TEMPORAL_TLS_/s);
  });
});

describe('connecting with these settings', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });

  it('sends TEMPORAL_API_KEY to the dev server (TLS off), and fails clearly when TLS is on against a plaintext server', async () => {
    Object.assign(process.env, {
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_API_KEY: 'dev-key',
      TEMPORAL_TLS: 'false',
    });
    const config = parseConfig({}, undefined, process.env);
    const client = await connectClient(config.temporal);
    try {
      expect(client.connection.workflowService).toBeDefined();
      await client.workflowService.getSystemInfo({});
    } finally {
      await client.connection.close();
    }
    delete process.env.TEMPORAL_TLS; // an API key turns TLS on
    await expect(connectClient(config.temporal)).rejects.toThrow(
      new RegExp(`Could not reach Temporal at ${inject('temporalAddress')}`),
    );
  });

  it('presents the client certificate, the server name and the API key to a TLS endpoint (client and worker connections)', async () => {
    const seen: Array<{ path: string; authorization?: string; client?: string; servername?: string | false | null }> =
      [];
    const file = (name: string) => readFileSync(join(TLS, name));
    const server = createSecureServer({
      key: file('server-key.pem'),
      cert: file('server.pem'),
      ca: file('ca.pem'),
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on('stream', (stream, headers) => {
      const socket = stream.session!.socket as TLSSocket;
      seen.push({
        path: String(headers[':path']),
        authorization: String(headers.authorization),
        client: String(socket.getPeerCertificate().subject?.CN),
        servername: socket.servername,
      });
      // A trailers-only gRPC answer: UNIMPLEMENTED, which the SDK accepts from servers without GetSystemInfo.
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '12',
          'grpc-message': 'not a Temporal server',
        },
        { endStream: true },
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      Object.assign(process.env, {
        TEMPORAL_ADDRESS: `127.0.0.1:${(server.address() as AddressInfo).port}`,
        TEMPORAL_API_KEY: 'cloud-key',
        TEMPORAL_TLS_CLIENT_CERT_PATH: join(TLS, 'client.pem'),
        TEMPORAL_TLS_CLIENT_KEY_PATH: join(TLS, 'client-key.pem'),
        TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(TLS, 'ca.pem'),
        TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
      });
      const config = parseConfig({}, undefined, process.env);
      const client = await connectClient(config.temporal);
      await client.connection.close();
      const byClient = seen.length;
      expect(byClient).toBeGreaterThan(0);
      const worker = await connectWorker(config.temporal).catch((e: Error) => e);
      if (!(worker instanceof Error)) await worker.close();
      expect(seen.length).toBeGreaterThan(byClient);
      const expected = {
        authorization: 'Bearer cloud-key',
        client: 'durable-codemode-worker',
        servername: 'temporal.test',
      };
      for (const request of seen)
        expect(request).toMatchObject({
          path: '/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo',
          ...expected,
        });
    } finally {
      server.close();
    }
  });
});
