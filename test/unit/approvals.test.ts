/**
 * The approval policy as the config states it: which calls its patterns select, and the config
 * errors for patterns that could never select anything.
 */
import { describe, expect, it } from 'vitest';
import { matchesCall, ruleIndexFor } from '../../core/approval-policy.ts';
import type { ApprovalRule } from '../../core/approvals.ts';
import { parseConfig } from '../../cli/config.ts';

const http = (method: string, path: string) => ({ kind: 'http' as const, method, path });

describe('approval policy patterns', () => {
  it('select HTTP calls by method and path, with * or {name} for one segment and a final ** for any rest', () => {
    expect(matchesCall('POST /leads/batch', http('POST', '/leads/batch'))).toBe(true);
    expect(matchesCall('post /leads/batch', http('POST', '/leads/batch?dry=1'))).toBe(true);
    expect(matchesCall('POST /leads/batch', http('PUT', '/leads/batch'))).toBe(false);
    expect(matchesCall('* /leads/*', http('DELETE', '/leads/42'))).toBe(true);
    expect(matchesCall('DELETE /leads/{id}', http('DELETE', '/leads/42'))).toBe(true);
    expect(matchesCall('DELETE /leads/{id}', http('DELETE', '/leads/42/notes'))).toBe(false);
    expect(matchesCall('DELETE /leads/*', http('DELETE', '/leads'))).toBe(false);
    expect(matchesCall('* /admin/**', http('GET', '/admin/users/7/keys'))).toBe(true);
    expect(matchesCall('* /admin/**', http('GET', '/administrators'))).toBe(false);
  });

  it('select MCP tools by name, * for any characters', () => {
    expect(matchesCall('delete_*', { kind: 'tool', tool: 'delete_file' })).toBe(true);
    expect(matchesCall('delete_*', { kind: 'tool', tool: 'undelete_file' })).toBe(false);
    expect(matchesCall('send.email', { kind: 'tool', tool: 'sendXemail' })).toBe(false);
  });

  it('pick the first rule that matches', () => {
    const rules = [
      { match: ['DELETE /leads/*'], after: 0, ask: 'each' },
      { match: ['* /leads/**'], after: 100, ask: 'once' },
    ] as ApprovalRule[];
    expect(ruleIndexFor(rules, http('DELETE', '/leads/1'))).toBe(0);
    expect(ruleIndexFor(rules, http('POST', '/leads/batch'))).toBe(1);
    expect(ruleIndexFor(rules, http('GET', '/sheets'))).toBe(-1);
  });
});

describe('approval config', () => {
  const crm = { openapi: 'crm.json', baseUrl: 'http://127.0.0.1:1' };

  it('takes rules per provider, with defaults, and approvers', () => {
    const config = parseConfig(
      {
        providers: { crm: { ...crm, approval: [{ match: ['POST /leads/batch'], after: 100, ask: 'once' }] } },
        approvals: { approvers: ['carol'] },
      },
      undefined,
      {},
    );
    expect(config.providers.crm.approval).toEqual([{ match: ['POST /leads/batch'], after: 100, ask: 'once' }]);
    expect(config.approvals).toEqual({ approvers: ['carol'], timeoutSeconds: 7 * 24 * 3600 });
    expect(parseConfig({}, undefined, {}).approvals.approvers).toBeUndefined();
  });

  it('names a pattern that can select nothing', () => {
    const bad =
      (match: string[], provider: object = crm) =>
      () =>
        parseConfig({ providers: { crm: { ...provider, approval: [{ match }] } } }, undefined, {});
    expect(bad(['/leads'])).toThrow(/providers\.crm\.approval\.0\.match\.0: "\/leads" must be "METHOD \/path"/);
    expect(bad(['FETCH /leads'])).toThrow(/the method must be GET, POST, PUT, PATCH, DELETE, HEAD or \*/);
    expect(bad(['POST leads'])).toThrow(/the path must start with \//);
    expect(bad(['delete file'], { mcp: { command: ['node', 'x.js'] } })).toThrow(/is not a tool name/);
    expect(() => parseConfig({ approvals: { approver: ['x'] } }, undefined, {})).toThrow(/did you mean "approvers"/);
  });
});
