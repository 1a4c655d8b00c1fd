/** Effect keys (core/effects.ts canonicalJson, sandbox/session.ts effectKey): what replay compares, so their text may never change. */
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../core/effects.ts';
import { effectKey } from '../../sandbox/session.ts';

describe('canonical JSON of a request', () => {
  it('is the same text whatever the order of the keys, at any depth', () => {
    const a = { kind: 'http', body: { leads: [{ name: 'Ann', email: 'a@x.com' }], note: null } };
    const b = { body: { note: null, leads: [{ email: 'a@x.com', name: 'Ann' }] }, kind: 'http' };
    expect(canonicalJson(a)).toBe('{"body":{"leads":[{"email":"a@x.com","name":"Ann"}],"note":null},"kind":"http"}');
    expect(canonicalJson(b)).toBe(canonicalJson(a));
  });

  it('lists index-like keys first in numeric order, as every release has (objects in order or not)', () => {
    const value = JSON.parse(
      '{"b":1,"10":2,"2":[3,{"z":null,"a":"\\u2028\\"q"}],"a":{"":1,"A":2,"a":3,"01":4,"4294967295":5,"7":6}}',
    );
    expect(canonicalJson(value)).toBe(
      '{"2":[3,{"a":"\u2028\\"q","z":null}],"10":2,"a":{"7":6,"":1,"01":4,"4294967295":5,"A":2,"a":3},"b":1}',
    );
    const inOrder = JSON.parse('{"1":1,"12":2,"A":3,"a":{"x":[{"k":1}]},"b":4}');
    expect(canonicalJson(inOrder)).toBe(JSON.stringify(inOrder));
  });

  it('keys a request by that text', () => {
    const request = { kind: 'http', provider: 'crm', method: 'POST', path: '/leads', body: { b: 1, a: 2 } } as const;
    expect(effectKey(request)).toBe(effectKey({ ...request, body: { a: 2, b: 1 } }));
    expect(effectKey(request)).toMatch(/^[0-9a-f]{64}$/);
    expect(effectKey(request)).not.toBe(effectKey({ ...request, body: { a: 2, b: 2 } }));
  });
});
