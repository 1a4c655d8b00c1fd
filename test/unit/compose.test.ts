/**
 * The deployment files, checked as far as possible without a Docker engine: docker-compose.yml
 * against the Compose Specification's JSON schema, every env var, port, volume, file and command it
 * names against what the code reads and accepts, the Dockerfile's sources, user and command, and,
 * where the docker CLI has its compose plugin, `docker compose config` (which parses without a daemon).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEMO_PORTS } from '../../demo-apis/index.ts';
import { loadConfig } from '../../cli/config.ts';
import { WORKER_NODE_FLAG } from '../../cli/worker-memory.ts';
import { SOURCE_FOLDERS } from '../../scripts/layers.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const CLI = join(ROOT, 'cli/main.ts');

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  env_file?: Array<{ path: string }>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  deploy?: { replicas?: number };
  restart?: string;
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

// `merge: true` resolves the `<<: *product` merge keys, as docker compose does.
const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
const services = Object.entries(compose.services);
/** The services that run the product's own image: the CLI or the demo APIs. */
const productServices = services.filter(([, s]) => s.build === '.');
const deployConfig = loadConfig(join(ROOT, 'deploy/config.json'), {});

/** Names in `NAME=value` lines (comments skipped). */
function envFileNames(path: string): string[] {
  return read(path)
    .split('\n')
    .filter((line) => /^[A-Z_][A-Z0-9_]*=/.test(line))
    .map((line) => line.slice(0, line.indexOf('=')));
}

/** Environment variables the product reads: its own code, and the SDKs it hands configuration to. */
function namesReadByCode(): Set<string> {
  const names = new Set<string>();
  const sources = SOURCE_FOLDERS.flatMap((dir) => tsFiles(join(ROOT, dir)));
  for (const file of sources) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\benv(?:\.|\[')([A-Z][A-Z0-9_]+)/g)) names.add(m[1]);
    // Names held in constants, e.g. TOKENS_ENV = 'DURABLE_CODEMODE_HTTP_TOKENS'.
    for (const m of text.matchAll(/'(DURABLE_CODEMODE_[A-Z0-9_]+)'/g)) names.add(m[1]);
  }
  const sdkFiles = [
    '@temporalio/envconfig/lib/envconfig-toml.js',
    '@aws-sdk/credential-provider-env/dist-cjs/index.js',
  ];
  for (const file of sdkFiles)
    for (const m of read(`node_modules/${file}`).matchAll(/["']((?:TEMPORAL|AWS)_[A-Z0-9_]+)["']/g)) names.add(m[1]);
  // Provider and token secrets are read from the variables the config names.
  const config = JSON.stringify(deployConfig);
  for (const m of config.matchAll(/"(?:tokenEnv|valueEnv)":"([A-Z_][A-Z0-9_]*)"/g)) names.add(m[1]);
  return names;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? tsFiles(join(dir, e.name))
      : e.name.endsWith('.ts') || e.name.endsWith('.js')
        ? [join(dir, e.name)]
        : [],
  );
}

function runCli(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, ['--no-node-snapshot', CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: r.stdout + r.stderr };
}

/** `host:port` of a URL or address. */
function hostPort(address: string): [string, number] {
  const url = new URL(address.includes('://') ? address : `tcp://${address}`);
  return [url.hostname, Number(url.port)];
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification JSON schema', () => {
    const schema = JSON.parse(read('test/fixtures/compose-spec/compose-spec.json')) as Record<string, unknown>;
    // The schema's own `$schema` URL is not one ajv bundles; it is draft-07, ajv's default.
    const validate = new Ajv({ strict: false, allErrors: true }).compile({ ...schema, $schema: undefined });
    const raw = parse(read('docker-compose.yml'), { merge: true }) as unknown;
    expect(validate(raw), JSON.stringify(validate.errors, null, 2)).toBe(true);
    // The validator is not vacuous: a misspelt key fails.
    expect(validate({ services: { worker: { image: 'x', restrat: 'always' } } })).toBe(false);
  });

  it('runs Temporal on PostgreSQL, its UI, an S3 server, worker replicas and the MCP server, all images pinned', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      [
        'demo-apis',
        'mcp',
        'postgres',
        's3',
        's3-init',
        'temporal',
        'temporal-namespace',
        'temporal-schema',
        'temporal-ui',
        'worker',
      ].sort(),
    );
    expect(compose.services.worker.deploy!.replicas).toBeGreaterThanOrEqual(2);
    for (const [name, service] of services) {
      expect(service.image, name).toMatch(/:[0-9A-Za-z][\w.-]*\d[\w.-]*$/); // a version tag, never `latest`
      expect(service.restart, name).toMatch(/^(unless-stopped|on-failure(:\d+)?)$/);
    }
    // Everything others wait on reports its health.
    for (const [name, service] of services) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(compose.services[dependency], `${name} depends on ${dependency}`).toBeDefined();
        if (condition === 'service_healthy') expect(compose.services[dependency].healthcheck, dependency).toBeDefined();
      }
    }
  });

  it('keeps state in named volumes, and mounts only files that exist', () => {
    const named = new Set<string>();
    for (const [name, service] of services) {
      for (const volume of service.volumes ?? []) {
        const [source, target] = volume.split(':');
        if (source.startsWith('./')) {
          expect(existsSync(join(ROOT, source)), `${name} mounts ${source}`).toBe(true);
          // The demo API runner imports ../demo-apis: it must land beside the image's /app/demo-apis.
          if (productServices.some(([n]) => n === name) && target.startsWith('/app/'))
            expect(target).toBe(`/app/${relative(ROOT, join(ROOT, source))}`);
        } else {
          named.add(source);
        }
      }
    }
    expect([...named].sort()).toEqual(Object.keys(compose.volumes).sort());
    expect(compose.services.postgres.volumes).toContain('postgres-data:/var/lib/postgresql/data');
    expect(compose.services.s3.volumes).toContain('s3-data:/data');
  });

  it('sets for the product only environment variables the code reads, and takes secrets from env files', () => {
    const known = namesReadByCode();
    for (const [name, service] of productServices) {
      for (const variable of Object.keys(service.environment ?? {}))
        expect(known, `${name}: ${variable}`).toContain(variable);
      for (const { path } of service.env_file ?? []) {
        expect(existsSync(join(ROOT, `${path}.example`)), `${path}.example`).toBe(true);
        for (const variable of envFileNames(`${path}.example`))
          expect(known, `${path}: ${variable}`).toContain(variable);
      }
    }
    // No secret in the compose file itself: every value set inline is a plain setting.
    for (const [name, service] of services) {
      for (const variable of Object.keys(service.environment ?? {}))
        expect(variable, name).not.toMatch(/TOKEN|SECRET|PASSWORD|PWD|KEY/);
    }
    // The filled-in env files stay out of git and out of the image.
    expect(read('deploy/.gitignore')).toMatch(/^\.env$/m);
    expect(read('deploy/.gitignore')).toMatch(/^infra\.env$/m);
    expect(read('.dockerignore')).toMatch(/^deploy\/\.env$/m);
  });

  it('points the product at the services and ports of the compose file', () => {
    expect(deployConfig.blobs.store).toMatchObject({
      type: 's3',
      bucket: compose.services['s3-init'].environment!.BUCKET,
    });
    const store = deployConfig.blobs.store as { endpoint: string };
    expect(compose.services['s3-init'].environment!.S3_ENDPOINT).toBe(store.endpoint);
    const [s3Host, s3Port] = hostPort(store.endpoint);
    const s3 = compose.services[s3Host];
    expect(s3.command![s3.command!.indexOf('--port') + 1]).toBe(`:${s3Port}`);
    expect(s3.healthcheck!.test.join(' ')).toContain(
      `127.0.0.1:${s3Port}${s3.command![s3.command!.indexOf('--health') + 1]}`,
    );
    const [temporalHost, temporalPort] = hostPort(deployConfig.temporal.address);
    expect(compose.services[temporalHost].healthcheck!.test).toContain(String(temporalPort));
    expect(compose.services['temporal-ui'].environment!.TEMPORAL_ADDRESS).toBe(deployConfig.temporal.address);
    // The namespace job registers the namespace of the product's own config.
    const namespaceJob = compose.services['temporal-namespace'];
    expect(namespaceJob.volumes).toContain(
      `./deploy/config.json:${namespaceJob.environment!.DURABLE_CODEMODE_CONFIG}:ro`,
    );
    for (const [provider, port] of Object.entries(DEMO_PORTS)) {
      expect(hostPort((deployConfig.providers[provider] as { baseUrl: string }).baseUrl)).toEqual(['demo-apis', port]);
    }
    expect(compose.services['demo-apis'].healthcheck!.test.join(' ')).toContain(`127.0.0.1:${DEMO_PORTS.crm}/`);
    // The MCP server listens where its port is published and its health check looks.
    const mcp = compose.services.mcp;
    const port = mcp.command![mcp.command!.indexOf('--port') + 1];
    expect(port).toBe(String(deployConfig.http.port));
    expect(mcp.ports).toEqual([`${port}:${port}`]);
    expect(mcp.healthcheck!.test.join(' ')).toContain(`127.0.0.1:${port}/mcp`);
    // Spec files named in the config are in the image (the Dockerfile copies demo-apis to /app/demo-apis).
    for (const provider of Object.values(deployConfig.providers)) {
      const spec = (provider as { openapi: string }).openapi;
      expect(spec.startsWith('/app/') && existsSync(join(ROOT, spec.slice('/app/'.length))), spec).toBe(true);
    }
  });

  it('gives the product services commands the CLI accepts', () => {
    const entrypoint = dockerfileInstruction('ENTRYPOINT');
    // The compiled CLI, which the image's build step makes (cli/build.ts; its output is tested in
    // compile.test.ts), with the worker's young generation cap (so the worker does not re-execute).
    expect(entrypoint).toEqual(['node', '--no-node-snapshot', WORKER_NODE_FLAG, 'dist/js/cli/main.js']);
    expect(read('Dockerfile')).toMatch(/^RUN [^\n]*(\\\n[^\n]*)*node --no-node-snapshot cli\/build\.ts/m);
    for (const [name, service] of productServices) {
      if (service.entrypoint) {
        // The demo API runner: a file of the repository, mounted at the same path under /app.
        expect(service.entrypoint[0], name).toBe('node');
        expect(existsSync(join(ROOT, service.entrypoint[1])), name).toBe(true);
        continue;
      }
      // --help after the real arguments: the CLI rejects unknown commands and options before printing help.
      const { status, output } = runCli([...service.command!, '--help']);
      expect(status, `${name}: ${service.command!.join(' ')}\n${output}`).toBe(0);
      expect(output).toMatch(/^Usage: durable-codemode /);
    }
    expect(runCli(['worker', '--bogus', '--help']).status).toBe(2); // the check above can fail
  }, 180_000); // each product command starts the CLI: slow on a loaded machine

  it('has shell scripts that parse', () => {
    const scripts = readdirSync(join(ROOT, 'deploy'), { recursive: true, encoding: 'utf8' }).filter((f) =>
      f.endsWith('.sh'),
    );
    expect(scripts).toContain('native/cluster.sh');
    for (const script of scripts) {
      const text = read(`deploy/${script}`);
      const shell = text.startsWith('#!/usr/bin/env bash') ? 'bash' : 'sh';
      const r = spawnSync(shell, ['-n', join(ROOT, 'deploy', script)], { encoding: 'utf8' });
      expect(r.status, `${script}: ${r.stderr}`).toBe(0);
    }
  });

  const composeCli = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  const hasCompose = composeCli.status === 0;
  it.skipIf(!hasCompose)(
    `is accepted by \`docker compose config\`${hasCompose ? '' : ' (skipped: no docker CLI with the compose plugin here)'}`,
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'dcm-compose-'));
      for (const entry of ['docker-compose.yml', 'Dockerfile', 'deploy'])
        cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
      for (const example of readdirSync(join(dir, 'deploy')).filter((f) => f.endsWith('.example'))) {
        cpSync(join(dir, 'deploy', example), join(dir, 'deploy', example.replace(/\.example$/, '')));
      }
      const r = spawnSync('docker', ['compose', 'config', '--format', 'json'], { cwd: dir, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const config = JSON.parse(r.stdout) as {
        services: Record<string, { deploy?: { replicas?: number }; environment?: Record<string, string> }>;
      };
      expect(Object.keys(config.services).sort()).toEqual(Object.keys(compose.services).sort());
      expect(config.services.worker.deploy!.replicas).toBe(compose.services.worker.deploy!.replicas);
      // The env files were read: their values reach the services that name them, and only those.
      expect(config.services.mcp.environment!.DURABLE_CODEMODE_HTTP_TOKENS).toBeDefined();
      expect(config.services.mcp.environment!.ROOT_SECRET_KEY).toBeUndefined();
      expect(config.services.s3.environment!.DURABLE_CODEMODE_HTTP_TOKENS).toBeUndefined();
    },
  );
});

/** The JSON array of a Dockerfile instruction such as ENTRYPOINT ["node", ...]. */
function dockerfileInstruction(name: string): string[] {
  const line = read('Dockerfile')
    .split('\n')
    .find((l) => l.startsWith(`${name} `));
  return JSON.parse(line!.slice(name.length + 1)) as string[];
}

describe('Dockerfile', () => {
  const lines = read('Dockerfile').split('\n');

  it('builds from a pinned Node 24 image, in stages, and runs as a non-root user', () => {
    const nodeImage = lines.find((l) => l.startsWith('ARG NODE_IMAGE='))!.split('=')[1];
    expect(nodeImage).toMatch(/^node:24\.\d+\.\d+-[a-z]+-slim$/);
    expect(lines.filter((l) => l.startsWith('FROM ')).length).toBeGreaterThanOrEqual(2);
    expect(lines.some((l) => /npm ci --omit=dev/.test(l))).toBe(true);
    const user = lines.filter((l) => l.startsWith('USER ')).at(-1);
    expect(user).toBe('USER node');
  });

  it('copies sources that exist and are not excluded from the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    const copies = lines.filter((l) => l.startsWith('COPY ') && !l.includes('--from='));
    expect(copies.length).toBeGreaterThan(0);
    for (const line of copies) {
      const sources = line.split(/\s+/).slice(1, -1);
      for (const source of sources) {
        expect(existsSync(join(ROOT, source)), line).toBe(true);
        expect(
          ignored.some((pattern) => source === pattern || source.startsWith(`${pattern}/`)),
          `${source} is in .dockerignore`,
        ).toBe(false);
      }
    }
  });

  it('copies every file the CLI and the mounted scripts load at run time, and installs every package they import', () => {
    const copied = lines
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
      .flatMap((l) => l.split(/\s+/).slice(1, -1));
    const dependencies = Object.keys(
      (JSON.parse(read('package.json')) as { dependencies: Record<string, string> }).dependencies,
    );
    // The CLI, and the scripts compose mounts into the image and runs with it (demo APIs, namespace job).
    const mounted = productServices.flatMap(([, s]) => (s.entrypoint ? [join(ROOT, s.entrypoint[1])] : []));
    expect(mounted.length).toBeGreaterThan(0);
    const seen = new Set<string>();
    const pending = [CLI, ...mounted];
    while (pending.length > 0) {
      const file = pending.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      const text = readFileSync(file, 'utf8');
      // Relative imports, and files read next to a module (new URL('../x', import.meta.url)).
      for (const m of text.matchAll(/(?:from\s+|import\(\s*|new URL\(\s*)'(\.{1,2}\/[^']+)'/g)) {
        const target = resolve(dirname(file), m[1]);
        if (existsSync(target) && statSync(target).isFile()) pending.push(target);
        else if (!existsSync(target))
          throw new Error(`${relative(ROOT, file)} refers to ${m[1]}, which does not exist`);
      }
      // Packages: the image installs `dependencies` only (npm ci --omit=dev).
      for (const m of text.matchAll(/(?:^import\s[^;]*?from\s+|^export\s[^;]*?from\s+|import\(\s*)'([^.'][^']*)'/gms)) {
        if (m[1].startsWith('node:')) continue;
        const name = m[1]
          .split('/')
          .slice(0, m[1].startsWith('@') ? 2 : 1)
          .join('/');
        expect(
          dependencies,
          `${relative(ROOT, file)} imports ${name}, which is not in package.json dependencies`,
        ).toContain(name);
      }
    }
    for (const file of seen) {
      if (mounted.includes(file)) continue;
      const path = relative(ROOT, file);
      expect(
        copied.some((source) => path === source || path.startsWith(`${source}/`)),
        `${path} is not copied into the image`,
      ).toBe(true);
    }
    expect(seen.size).toBeGreaterThan(20);
  });

  it('bakes in no secret and runs a command the CLI accepts', () => {
    const secretNames = [...envFileNames('deploy/.env.example'), ...envFileNames('deploy/infra.env.example')];
    for (const line of lines.filter((l) => /^(ENV|ARG) /.test(l) || /^\s+\S+=/.test(l))) {
      for (const name of secretNames) expect(line, `${name} in the Dockerfile`).not.toContain(name);
    }
    const { status, output } = runCli([...dockerfileInstruction('CMD'), '--help']);
    expect(status, output).toBe(0);
  });
});

/**
 * deploy/native/cluster.sh runs the compose topology without Docker: the same releases, the same
 * product settings (deploy/config.json, its compose addresses mapped to this machine), the same env
 * files and the same set-up scripts. Running it is the cluster project's job (test/cluster); these
 * checks keep the two files from drifting apart.
 */
describe('deploy/native/cluster.sh', () => {
  const script = read('deploy/native/cluster.sh');
  const SCRIPT = join(ROOT, 'deploy/native/cluster.sh');

  /** `config` of a throwaway state folder on ports from `base`: the files `up` would run with. */
  function nativeSettings(base: number) {
    const dir = mkdtempSync(join(tmpdir(), 'dcm-native-config-'));
    const env = { ...process.env, DCM_NATIVE_DIR: dir, DCM_PORT_BASE: String(base) };
    for (const command of ['config', 'env']) {
      const r = spawnSync('bash', [SCRIPT, command], { env, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    }
    const vars = (file: string) =>
      Object.fromEntries(
        readFileSync(join(dir, file), 'utf8')
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
    try {
      return {
        ports: vars('ports.env'),
        temporal: vars('temporal.env'),
        config: loadConfig(join(dir, 'config.json'), {}),
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('builds the releases compose pins', () => {
    const tools = Object.fromEntries(
      [...script.matchAll(/^ {2}'([a-z-]+) v(\S+) (\S+)'$/gm)].map((m) => [m[1], { version: m[2], module: m[3] }]),
    );
    const tag = (service: string) => compose.services[service].image!.split(':').pop()!.replace(/^v/, '');
    expect(tools['temporal-server'].version).toBe(tag('temporal'));
    expect(tools['temporal-sql-tool'].version).toBe(tag('temporal-schema'));
    expect(tools['temporal-ui-server'].version).toBe(tag('temporal-ui'));
    expect(tools.versitygw.version).toBe(tag('s3'));
    expect(compose.services.s3.image).toMatch(/^versity\/versitygw:/);
  });

  it("runs the Temporal server with compose's settings, on this machine's addresses and ports", () => {
    const { ports, temporal } = nativeSettings(20_000);
    const composed = compose.services.temporal.environment!;
    expect(Object.keys(temporal)).toEqual(expect.arrayContaining(Object.keys(composed)));
    for (const same of ['DB', 'POSTGRES_USER']) expect(temporal[same], same).toBe(composed[same]);
    expect(temporal.DB_PORT).toBe(ports.DB_PORT);
    // The dynamic config compose mounts at DYNAMIC_CONFIG_FILE_PATH, read from the repository.
    const mount = compose.services.temporal.volumes!.find((v) =>
      v.split(':')[1].endsWith(composed.DYNAMIC_CONFIG_FILE_PATH),
    )!;
    expect(temporal.DYNAMIC_CONFIG_FILE_PATH).toBe(join(ROOT, mount.split(':')[0]));
    // All nine server ports, each a variable of the server's embedded config template.
    const serverPorts = Object.keys(temporal).filter((k) => /^(FRONTEND|HISTORY|MATCHING|WORKER)_\w+_PORT$/.test(k));
    expect(serverPorts).toHaveLength(9);
    for (const port of serverPorts) expect(temporal[port]).toBe(ports[port]);
  });

  it('maps every compose address of deploy/config.json to its own ports, all below 32768', () => {
    const { ports, config } = nativeSettings(20_000);
    const values = Object.values(ports).map(Number);
    expect(new Set(values).size).toBe(values.length);
    for (const port of values) expect(port).toBeLessThan(32_768); // Temporal's membership ports are a SQL smallint
    expect(config.temporal).toMatchObject({
      address: `127.0.0.1:${ports.FRONTEND_GRPC_PORT}`,
      namespace: deployConfig.temporal.namespace,
      taskQueue: deployConfig.temporal.taskQueue,
    });
    expect(config.blobs.store).toEqual({ ...deployConfig.blobs.store, endpoint: `http://127.0.0.1:${ports.S3_PORT}` });
    expect(config.providers).toMatchObject({
      crm: { openapi: join(ROOT, 'demo-apis/crm.openapi.json'), baseUrl: `http://127.0.0.1:${ports.CRM_PORT}` },
      sheets: {
        openapi: join(ROOT, 'demo-apis/sheets.openapi.json'),
        baseUrl: `http://127.0.0.1:${ports.SHEETS_PORT}`,
      },
    });
    for (const provider of Object.values(config.providers))
      expect(existsSync((provider as { openapi: string }).openapi)).toBe(true);
    // Nothing else differs, and no compose host name is left.
    expect(config.dataDir).toMatch(/\/data$/);
    const rest = (c: typeof config) => ({
      ...c,
      dataDir: '',
      temporal: '',
      providers: '',
      blobs: { ...c.blobs, store: '' },
    });
    expect(rest(config)).toEqual(rest(deployConfig));
    expect(JSON.stringify(config)).not.toMatch(new RegExp(`\\b(${Object.keys(compose.services).join('|')}):\\d`));
  });
});
