# syntax=docker/dockerfile:1
# The durable-codemode image: workers and the MCP server (docker-compose.yml runs both from it).
#   docker build -t durable-codemode .
#   docker run --rm durable-codemode --help
# Secrets never enter the image: they come from the environment at run time (deploy/.env).

# Node 24 (its type stripping compiles the TypeScript sources at build time); pinned to the version the tests ran on.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only. No install scripts: isolated-vm and @swc/core ship prebuilt
# binaries for linux x64 and arm64 (glibc), so nothing compiles and no toolchain is needed.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
# The Temporal core bridge ships native builds for five platforms (about 140 MB); keep this one.
RUN find node_modules/@temporalio/core-bridge/releases -mindepth 1 -maxdepth 1 ! -name "$(uname -m)-unknown-linux-gnu" -exec rm -rf {} +

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    DURABLE_CODEMODE_DATA_DIR=/var/lib/durable-codemode
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY core ./core
COPY sandbox ./sandbox
COPY workflows ./workflows
COPY activities ./activities
COPY blobs ./blobs
COPY providers ./providers
COPY privacy ./privacy
COPY ledger ./ledger
COPY temporal ./temporal
COPY jobs ./jobs
COPY server ./server
COPY cli ./cli
COPY demo-apis ./demo-apis
# Fail the build, not the first job, if a native module does not load on this platform. Then the
# build step, once, here: the CLI compiled to JavaScript (dist/js: no TypeScript stripping in every
# process) and the workflow code bundled (dist/workflow-bundles: no bundling in every worker).
RUN node --no-node-snapshot -e "require('isolated-vm'); require('@swc/core'); require('@temporalio/core-bridge')" \
 && node --no-node-snapshot cli/build.ts \
 && mkdir -p /var/lib/durable-codemode && chown node:node /var/lib/durable-codemode
# The code stays root-owned and read-only to the process.
USER node
# The worker's memory settings (cli/worker-memory.ts: WORKER_NODE_FLAG, WORKER_MALLOC_ARENAS) given
# at start, so the worker need not re-execute itself to take them; `serve` runs as well with them.
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["node", "--no-node-snapshot", "--max-semi-space-size=8", "dist/js/cli/main.js"]
CMD ["worker"]
