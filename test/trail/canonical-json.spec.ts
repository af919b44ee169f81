import { canonicalJson, canonicalNumber } from '../../lib/trail/canonical-json';
import { UNCHANGED_TOAST_MARKER } from '../../lib/trail/json-values';
import { createTestDatabase, type TestDatabase } from '../support/database';

/** JSON texts as the worker may have them, each with something jsonb rewrites. */
const AWKWARD: Array<[string, string]> = [
  ['unicode', '{"name":"Zoë 😀 \u4e2d\u6587","é":"ü"}'],
  ['escapes', '{"s":"tab\\tnl\\n quote\\" slash\\/ back\\\\ bell\\u0007 \\u00e9 \\ud83d\\ude00 \\u2028"}'],
  ['big numbers', '{"n":12345678901234567890.123456789000,"i":-9223372036854775808,"u":18446744073709551616}'],
  ['exponents', '{"a":1e2,"b":1.50E-1,"c":-0,"d":-0.0e3,"e":2.5e+1,"f":100e-2,"g":0.1e1,"h":1e-7}'],
  ['nested', '{"z":{"b":[1,{"y":2,"x":[[],{}]}],"a":null},"a":[true,false,null,"x"]}'],
  ['duplicate keys', '{"a":1,"b":2,"a":{"k":1,"k":"last"}}'],
  ['empty', '{}'],
  ['empty members', '{"o":{},"a":[],"s":""}'],
  ['whitespace', ' { "a" : [ 1 , 2 ] ,\n\t"b" : { } } '],
  ['key order', '{"bb":1,"a":2,"ccc":3,"B":4,"é":5,"e":6}'],
  ['unchanged TOAST marker', `{"id":1,"body":${JSON.stringify(UNCHANGED_TOAST_MARKER)}}`],
  ['keys with escapes', '{"a\\"b":1,"a\\\\b":2,"\\u0041":3,"A":4}'],
  ['array top level', '[3,2,1,{"b":1,"a":2}]'],
  ['string top level', '"x\\u0020y"'],
];

describe('canonicalJson', () => {
  it('sorts keys, drops spaces, keeps the last duplicate', () => {
    expect(canonicalJson(' { "b" : 1, "a" : [ 1 , {"d":1,"c":2} ], "b": 3 } ')).toBe('{"a":[1,{"c":2,"d":1}],"b":3}');
    expect(canonicalJson('{}')).toBe('{}');
    expect(canonicalJson('[]')).toBe('[]');
  });

  it('decodes strings and writes them as JSON.stringify does', () => {
    expect(canonicalJson('"\\u00e9\\/\\ud83d\\ude00\\u0001"')).toBe(JSON.stringify('é/😀\u0001'));
    expect(canonicalJson('"a\\\\"')).toBe('"a\\\\"');
  });

  it.each([
    ['0', '0'],
    ['-0', '0'],
    ['-0.00', '0.00'],
    ['1.0', '1.0'],
    ['1e2', '100'],
    ['1.0e2', '100'],
    ['1.50E-1', '0.150'],
    ['-1.5e+3', '-1500'],
    ['100e-2', '1.00'],
    ['5e-1', '0.5'],
    ['0.1e1', '1'],
    ['-0e-2', '0.00'],
    ['12345678901234567890.123456789000', '12345678901234567890.123456789000'],
  ])('numbers as numeric prints them: %s → %s', (literal, printed) => {
    expect(canonicalNumber(literal)).toBe(printed);
  });

  it('refuses what is not JSON', () => {
    for (const bad of ['{', '{"a"}', '[1,]', 'tru', '{"a":1} x', '"open']) expect(() => canonicalJson(bad)).toThrow(SyntaxError);
  });

  describe('against jsonb', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await createTestDatabase('canonical_json');
    });
    afterAll(() => db?.drop());

    it.each(AWKWARD)('%s: the text and jsonb\'s reprint of it canonicalise alike', async (_label, text) => {
      const [{ back }] = await db.query<{ back: string }>(`SELECT ($1::jsonb)::text AS back`, [text]);
      expect(canonicalJson(back)).toBe(canonicalJson(text));
    });

    it('numbers: every literal form reads back as the same canonical text', async () => {
      const literals = ['1e2', '1.0e2', '1.50E-1', '-0', '-0.0', '0e5', '1e-3', '-1.5e+3', '123e-2', '1e20', '2.5e1', '0.1e1', '100e-2', '9.999e400', '-7.25e-10'];
      const rows = await db.query<{ literal: string; back: string }>(`SELECT l AS literal, (l::jsonb)::text AS back FROM unnest($1::text[]) AS l`, [literals]);
      for (const { literal, back } of rows) expect([literal, canonicalNumber(literal)]).toEqual([literal, back]);
    });
  });
});
