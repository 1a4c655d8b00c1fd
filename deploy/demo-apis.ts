/**
 * The bundled demo APIs (crm on :4001, sheets on :4002) as a service of their own, so the compose
 * deployment works before any real provider is configured. Mounted into the product image by
 * docker-compose.yml; replace the providers in deploy/config.json with your own APIs.
 */
import { DEMO_PORTS, startDemoApis } from '../demo-apis/index.ts';

const apis = await startDemoApis({ host: '0.0.0.0' });
console.error(`demo APIs listening: crm on :${DEMO_PORTS.crm}, sheets on :${DEMO_PORTS.sheets}`);
process.once('SIGTERM', () => void apis.close().then(() => process.exit(0)));
