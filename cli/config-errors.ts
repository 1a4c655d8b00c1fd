/**
 * zod's issues about a config file, said the way an operator fixes them: one line per key path,
 * `providers.crm.auth: "tokenEnv" is required for type "bearer"; unknown key "env" (did you mean
 * "tokenEnv"?)`. A union (a provider is an HTTP API or an MCP server) is explained by the one
 * alternative the keys the operator wrote point to, not as "Invalid input".
 */
import type { z } from 'zod';

type Issue = z.core.$ZodIssue;
type Path = readonly PropertyKey[];

/** One line per offending path, in the order the issues came. */
export function explainIssues(issues: readonly Issue[], raw: unknown): string[] {
  const byPath = new Map<string, string[]>();
  for (const { path, message } of problems(issues, raw, []))
    byPath.set(pathText(path), [...(byPath.get(pathText(path)) ?? []), message]);
  return [...byPath].map(([path, messages]) => `${path}: ${[...new Set(messages)].join('; ')}`);
}

function pathText(path: Path): string {
  return path.length ? path.map(String).join('.') : '(top level)';
}

function valueAt(raw: unknown, path: Path): unknown {
  let value = raw;
  for (const key of path) value = value !== null && typeof value === 'object' ? (value as never)[key] : undefined;
  return value;
}

function problems(issues: readonly Issue[], raw: unknown, prefix: Path): Array<{ path: Path; message: string }> {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    switch (issue.code) {
      case 'invalid_union': {
        if (valueAt(raw, path) === undefined && path.length) return [required(raw, path)];
        if (issue.errors.length === 0) {
          // A discriminated union (auth, blob store) whose `type` matches no alternative.
          const { options } = issue as { options?: unknown[] };
          const got = valueAt(raw, path);
          const field = String(path.at(-1));
          return [
            {
              path: path.slice(0, -1),
              message: `"${field}" must be ${options?.length ? `one of ${options.map((o) => JSON.stringify(o)).join(', ')}` : 'set'}${got === undefined ? '' : `; got ${JSON.stringify(got)}`}`,
            },
          ];
        }
        const meant = likeliestAlternative(issue.errors);
        if (meant) return problems(meant, raw, path);
        // The keys written fit no alternative better than another: say what each would need.
        const forms = issue.errors.map(
          (issues, i) =>
            `(${i + 1}) ${problems(issues, raw, path)
              .map((p) => (p.path.length > path.length ? `${pathText(p.path.slice(path.length))}: ` : '') + p.message)
              .join(', ')}`,
        );
        return [{ path, message: `fits none of its forms: ${forms.join('; or ')}` }];
      }
      case 'invalid_key':
        // A record key (a provider or principal name): the reason is one level down.
        return issue.issues.map((inner) => ({ path, message: inner.message }));
      case 'invalid_type':
        return [
          valueAt(raw, path) === undefined && path.length ? required(raw, path) : { path, message: issue.message },
        ];
      default:
        return [{ path, message: issue.message }];
    }
  });
}

/** A missing key, said at its parent: `"tokenEnv" is required for type "bearer"`. */
function required(raw: unknown, path: Path): { path: Path; message: string } {
  const parent = path.slice(0, -1);
  const type = (valueAt(raw, parent) as { type?: unknown } | undefined)?.type;
  return {
    path: parent,
    message: `"${String(path.at(-1))}" is required${typeof type === 'string' ? ` for type "${type}"` : ''}`,
  };
}

/**
 * The alternative the operator meant: the one that knows most of the keys they wrote (fewest unknown
 * keys at its own level); undefined when the keys written do not tell (e.g. an empty object), so
 * that every alternative is explained.
 */
function likeliestAlternative(alternatives: readonly (readonly Issue[])[]): readonly Issue[] | undefined {
  const unknownKeys = (issues: readonly Issue[]) =>
    issues.reduce((n, i) => n + (i.code === 'unrecognized_keys' && i.path.length === 0 ? i.keys.length : 0), 0);
  const fewest = Math.min(...alternatives.map(unknownKeys));
  const candidates = alternatives.filter((issues) => unknownKeys(issues) === fewest);
  return candidates.length === 1 ? candidates[0] : undefined;
}
