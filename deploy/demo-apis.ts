/**
 * The bundled demo APIs (crm on :4001, sheets on :4002) as a service of their own, so a deployment
 * works before any real provider is configured. Mounted into the product image by
 * docker-compose.yml and run by deploy/native/cluster.sh (which picks the host and ports); replace
 * the providers in deploy/config.json with your own APIs.
 *
 *   node deploy/demo-apis.ts [--host H] [--crm-port N] [--sheets-port N]
 */
import { parseArgs } from 'node:util';
import { DEMO_PORTS, startDemoApis } from '../demo-apis/index.ts';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '0.0.0.0' },
    'crm-port': { type: 'string', default: String(DEMO_PORTS.crm) },
    'sheets-port': { type: 'string', default: String(DEMO_PORTS.sheets) },
  },
});
const apis = await startDemoApis({
  host: values.host,
  crmPort: Number(values['crm-port']),
  sheetsPort: Number(values['sheets-port']),
});
console.error(`demo APIs listening: crm on ${apis.crm.url}, sheets on ${apis.sheets.url}`);
process.once('SIGTERM', () => void apis.close().then(() => process.exit(0)));
