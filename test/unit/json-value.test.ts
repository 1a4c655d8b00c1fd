/**
 * The JSON values the host takes in (core/json-value.ts): what z.json() accepts, the value itself
 * when there is nothing to drop, own __proto__ keys dropped at any depth, and nesting bounded.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { JsonValue, MAX_JSON_DEPTH } from '../../core/json-value.ts';

const nested = (levels: number): unknown => JSON.parse('['.repeat(levels) + ']'.repeat(levels));

describe('JsonValue', () => {
  it('accepts what z.json() accepts, as the same value (nothing copied)', () => {
    const body = JSON.parse(
      '{"leads":[{"name":"Ada","age":36,"vip":true,"tags":["a","b"],"note":null,"nested":{"deep":[1.5,-2,0]}}],"n":0}',
    );
    expect(z.json().parse(body)).toEqual(body);
    expect(JsonValue.parse(body)).toBe(body);
    for (const scalar of ['x', 1, 0, true, false, null]) expect(JsonValue.parse(scalar)).toBe(scalar);
    expect(JsonValue.parse(nested(MAX_JSON_DEPTH))).toEqual(nested(MAX_JSON_DEPTH));
  });

  it('drops own __proto__ keys wherever they are, as z.json() does, and pollutes no prototype', () => {
    const evil = JSON.parse('{"__proto__":{"polluted":"yes"},"list":[{"__proto__":{"x":1},"ok":1}],"ok":1}');
    const parsed = JsonValue.parse(evil) as Record<string, unknown> & { list: Array<Record<string, unknown>> };
    expect(parsed).toEqual(z.json().parse(evil));
    expect(Object.hasOwn(parsed, '__proto__')).toBe(false);
    expect(Object.hasOwn(parsed.list[0], '__proto__')).toBe(false);
    expect(parsed).toEqual({ list: [{ ok: 1 }], ok: 1 });
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses what is not JSON, saying what', () => {
    const refused = (value: unknown) => JsonValue.safeParse(value).error?.issues[0]?.message;
    expect(refused(Number.NaN)).toMatch(/NaN is not a JSON number/);
    expect(refused({ a: [1, Infinity] })).toMatch(/Infinity is not a JSON number/);
    expect(refused({ a: undefined })).toMatch(/values of type undefined are not JSON/);
    expect(refused([() => 1])).toMatch(/values of type function are not JSON/);
    expect(refused({ when: new Date(0) })).toMatch(/only plain objects and arrays/);
    expect(refused(new Map())).toMatch(/only plain objects and arrays/);
    for (const value of [Number.NaN, { a: undefined }, { when: new Date(0) }])
      expect(z.json().safeParse(value).success).toBe(false);
  });

  it('refuses values nested deeper than the host walks, before any recursion could overflow', () => {
    expect(JsonValue.safeParse(nested(MAX_JSON_DEPTH + 1)).error?.issues[0]?.message).toMatch(
      new RegExp(`nested more than ${MAX_JSON_DEPTH} levels deep`),
    );
    // The sandbox can serialize far deeper values than that (the escape corpus sends 5,000 levels).
    expect(JsonValue.safeParse(nested(100_000)).success).toBe(false);
  });
});
