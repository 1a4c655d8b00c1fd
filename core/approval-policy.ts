/**
 * The pure side of approvals, bundled into workflow code (no zod, no Node APIs): the name of the
 * Update and Signal that answer them, and which calls a provider's approval policy selects
 * (the rules' schema is ApprovalRule in approvals.ts).
 */
import type { ApprovalRule } from './approvals.ts';

/** The workflow Update (and Signal, for UIs that only send signals) that answers pending approvals. */
export const ANSWER_APPROVAL = 'answerApproval';

/** A call as the policy sees it. */
export type PolicyCall = { kind: 'http'; method: string; path: string } | { kind: 'tool'; tool: string };

/** Whether `pattern` (one entry of a rule's `match`) selects `call`. */
export function matchesCall(pattern: string, call: PolicyCall): boolean {
  if (call.kind === 'tool') return globMatch(pattern, call.tool);
  const space = pattern.indexOf(' ');
  if (space < 0) return false;
  const method = pattern.slice(0, space).toUpperCase();
  if (method !== '*' && method !== call.method.toUpperCase()) return false;
  return pathMatches(pattern.slice(space + 1).trim(), call.path.split('?')[0]);
}

/** The index of the first rule matching `call`, or -1. */
export function ruleIndexFor(rules: readonly ApprovalRule[], call: PolicyCall): number {
  return rules.findIndex((rule) => rule.match.some((pattern) => matchesCall(pattern, call)));
}

/** Why a rule's `match` entry cannot select anything, or undefined when it is well-formed. */
export function patternProblem(pattern: string, kind: 'http' | 'tool'): string | undefined {
  if (kind === 'tool') return /\s/.test(pattern) ? `"${pattern}" is not a tool name (no spaces)` : undefined;
  const [method, path, ...rest] = pattern.trim().split(/\s+/);
  if (rest.length > 0 || !path) return `"${pattern}" must be "METHOD /path", e.g. "POST /leads/*"`;
  if (!/^(\*|GET|POST|PUT|PATCH|DELETE|HEAD)$/i.test(method))
    return `"${pattern}": the method must be GET, POST, PUT, PATCH, DELETE, HEAD or *`;
  if (!path.startsWith('/')) return `"${pattern}": the path must start with /`;
  return undefined;
}

function pathMatches(pattern: string, path: string): boolean {
  const want = pattern.split('/').filter(Boolean);
  const have = path.split('/').filter(Boolean);
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '**' && i === want.length - 1) return true;
    if (i >= have.length) return false;
    if (want[i] === '*' || /^\{[^}]*\}$/.test(want[i])) continue;
    if (want[i] !== have[i]) return false;
  }
  return want.length === have.length;
}

function globMatch(pattern: string, name: string): boolean {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`).test(name);
}
