/** float32 ↔ float16 bit patterns (a float16 image input, float16 outputs). */
import { describe, expect, it } from 'vitest';
import { fromFloat16Bits, toFloat16Array, toFloat16Bits } from '../../../../src/adapters/model/float16.ts';

describe('float16', () => {
  it('exact values, both ways', () => {
    const cases: [number, number][] = [[0, 0x0000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [2 ** -24, 0x0001], [2 ** -14, 0x0400]];
    for (const [value, bits] of cases) {
      expect(toFloat16Bits(value)).toBe(bits);
      expect(fromFloat16Bits(bits)).toBe(value);
    }
    expect(toFloat16Bits(-0)).toBe(0x8000);
  });

  it('rounds to nearest, ties to even; overflow to infinity, underflow to zero; NaN stays NaN', () => {
    expect(toFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie: down to even
    expect(toFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: up to even
    expect(toFloat16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(toFloat16Bits(65520)).toBe(0x7c00);
    expect(toFloat16Bits(2 ** -26)).toBe(0x0000);
    expect(toFloat16Bits(Infinity)).toBe(0x7c00);
    expect(Number.isNaN(fromFloat16Bits(toFloat16Bits(Number.NaN)))).toBe(true);
  });

  it('a normalised image survives the trip within float16 precision', () => {
    const values = Float32Array.from({ length: 1000 }, (_, i) => (i / 999 - 0.485) / 0.229);
    const back = Array.from(toFloat16Array(values), fromFloat16Bits);
    back.forEach((v, i) => expect(Math.abs(v - (values[i] as number))).toBeLessThanOrEqual(Math.abs(values[i] as number) * 2 ** -11 + 2 ** -24));
  });
});
