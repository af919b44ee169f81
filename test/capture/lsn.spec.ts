import { formatLsn, lsnToDecimal, parseLsn } from '../../lib/capture/lsn';

describe('LSN text', () => {
  it('parses both shapes pg-logical-replication hands out', () => {
    expect(parseLsn('0/17FB108')).toBe(0x17fb108n);
    expect(parseLsn('00000001/017FB108')).toBe((1n << 32n) | 0x17fb108n);
    expect(formatLsn(parseLsn('00000001/017FB108'))).toBe('1/17FB108');
  });

  it('writes the decimal position exactly, with and without the bigint path', () => {
    // 2^53 is where a double stops being exact: the fast path must hand over below it.
    for (const text of ['0/0', '0/17FB108', '1/0', '1FFFFF/FFFFFFFF', '200000/0', '200000/1', 'FFFFFFFF/FFFFFFFF', '00000003/00000010']) {
      expect(lsnToDecimal(text)).toBe(parseLsn(text).toString());
    }
  });

  it('rejects text that is not an LSN', () => {
    for (const text of ['', '1x/5', '123456789/0']) expect(() => parseLsn(text)).toThrow(/Not an LSN/);
    for (const text of ['', '17FB108', '/1', 'x/1', '1x/5', '1/2/3', '123456789/0']) expect(() => lsnToDecimal(text)).toThrow(/Not an LSN/);
  });
});
