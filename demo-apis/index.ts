// Starts both demo APIs together, as the `dev` command and the tests use them.
import { startCrmApi } from './crm.ts';
import type { CrmApi } from './crm.ts';
import { DEMO_PORTS } from './providers.ts';
import { startSheetsApi } from './sheets.ts';
import type { SheetsApi } from './sheets.ts';

export { startCrmApi, startSheetsApi };
export type { CrmApi, CrmApiOptions, CrmStats, Lead, LeadInput } from './crm.ts';
export type { SheetsApi, SheetsApiOptions, SheetsStats } from './sheets.ts';

export { DEMO_PORTS, demoProvidersConfig } from './providers.ts';

export interface DemoApis {
  crm: CrmApi;
  sheets: SheetsApi;
  close(): Promise<void>;
}

export async function startDemoApis(
  options: { host?: string; crmPort?: number; sheetsPort?: number } = {},
): Promise<DemoApis> {
  const { host, crmPort = DEMO_PORTS.crm, sheetsPort = DEMO_PORTS.sheets } = options;
  const crm = await startCrmApi({ host, port: crmPort });
  let sheets: SheetsApi;
  try {
    sheets = await startSheetsApi({ host, port: sheetsPort });
  } catch (error) {
    // Don't leave the CRM listening when the pair cannot start.
    await crm.close();
    throw error;
  }
  return {
    crm,
    sheets,
    close: async () => {
      await Promise.all([crm.close(), sheets.close()]);
    },
  };
}
