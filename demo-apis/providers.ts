// Where the demo APIs listen by default and how the product names them as providers. Imports no
// server code, so a worker that only calls the demo APIs does not load them.
import { fileURLToPath } from 'node:url';

export const CRM_SPEC = new URL('./crm.openapi.json', import.meta.url);
export const CRM_SPEC_PATH = fileURLToPath(CRM_SPEC);
export const SHEETS_SPEC = new URL('./sheets.openapi.json', import.meta.url);
export const SHEETS_SPEC_PATH = fileURLToPath(SHEETS_SPEC);

export const DEMO_PORTS = { crm: 4001, sheets: 4002 };

/** Provider entries pointing the product at the running demo APIs. */
export function demoProvidersConfig(apis: { crm: { url: string }; sheets: { url: string } }) {
  return {
    crm: { openapi: CRM_SPEC_PATH, baseUrl: apis.crm.url },
    sheets: { openapi: SHEETS_SPEC_PATH, baseUrl: apis.sheets.url },
  };
}
