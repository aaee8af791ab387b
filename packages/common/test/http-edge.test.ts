import { parseJsonObject } from '../src/http-edge';

const parse = (text: string) => parseJsonObject(text, (m) => new Error(m), { allowArrays: true }) as unknown;

test('a field twice in one object is refused, at any depth; the same key in separate objects or in strings is not', () => {
  expect(() => parse('{"a":1,"a":2}')).toThrow('the body has the field "a" twice');
  expect(() => parse('{"a":{"b":1,"c":[1,{"d":1, "d" :2}]}}')).toThrow('the body has the field "d" twice');
  expect(() => parse('{"\\u0061":1,"a":2}')).toThrow('the body has the field "a" twice');
  expect(parse('{"a":{"b":1},"b":2}')).toEqual({ a: { b: 1 }, b: 2 });
  expect(parse('[{"a":1},{"a":2}]')).toEqual([{ a: 1 }, { a: 2 }]);
  expect(parse('{"x":"\\"a\\":1,\\"a\\":2","a":"}{[\\\\"}')).toEqual({ x: '"a":1,"a":2', a: '}{[\\' });
  expect(parse('{"a":[{"a":1}],"b":{"a":2}}')).toEqual({ a: [{ a: 1 }], b: { a: 2 } });
});
