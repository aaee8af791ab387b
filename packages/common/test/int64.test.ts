/** int64 fields: decoded as numbers inside protobufjs, shown as decimal strings, encoded exactly. */
import fc from 'fast-check';
import * as protobuf from 'protobufjs';
import { loadPackageDefinition } from '../src/proto';

interface Codec {
  serialize(o: object): Buffer;
  deserialize(b: Buffer): { generation: string };
}
const event = loadPackageDefinition()['magrathea.v1.NodeEvent'] as unknown as Codec;

/** The varint protobufjs would write for field 1 with long.js (the exact reference). */
function reference(decimal: string): Buffer {
  const w = protobuf.Writer.create();
  const Long = protobuf.util.Long as unknown as { fromString(s: string, unsigned: boolean): protobuf.Long };
  w.uint32(8).uint64(Long.fromString(decimal, true));
  return Buffer.from(w.finish());
}

describe('int64 fields', () => {
  test('decoding uses numbers (no long.js object is made)', () => {
    const r = protobuf.Reader.create(reference('5').subarray(1));
    expect(typeof r.uint64()).toBe('number');
  });

  test('every safe integer goes out exactly and comes back as the same decimal string', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        const s = String(n);
        const b = event.serialize({ generation: s });
        expect(b.equals(reference(s))).toBe(true);
        expect(event.deserialize(b).generation).toBe(s);
      }),
    );
  });

  test('a decimal string beyond 2^53 is still encoded exactly; decoded, it is no safe integer (so refused)', () => {
    const max = '18446744073709551615';
    const b = event.serialize({ generation: max });
    expect(b.equals(reference(max))).toBe(true);
    expect(Number.isSafeInteger(Number(event.deserialize(b).generation))).toBe(false);
  });
});
