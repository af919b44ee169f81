import { UuidV7Generator } from '../../lib/capture/uuid-v7';
import { createTestDatabase, type TestDatabase } from '../support/database';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('UuidV7Generator', () => {
  it('makes RFC 9562 version 7 ids carrying the millisecond', () => {
    const id = new UuidV7Generator(() => 0x0192_3456_789a).next();
    expect(id).toMatch(UUID_V7);
    expect(id.slice(0, 13)).toBe('01923456-789a');
  });

  it('keeps generation order within a millisecond, past 4096 ids, and when the clock steps back', () => {
    const clock = [5000, 5000, 4000, ...Array(9000).fill(5001), 7000];
    let i = 0;
    const gen = new UuidV7Generator(() => clock[Math.min(i++, clock.length - 1)]);
    const ids = clock.map(() => gen.next());
    expect(ids.every((id) => UUID_V7.test(id))).toBe(true);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // The clock stepping back does not go back; overflow borrows the following milliseconds.
    expect(ids[2].slice(0, 13)).toBe(ids[1].slice(0, 13));
    expect(parseInt(ids[ids.length - 2].replace('-', '').slice(0, 12), 16)).toBeGreaterThan(5001);
    expect(ids[ids.length - 1].startsWith('00000000-1b58')).toBe(true);
  });

  describe('in PostgreSQL', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await createTestDatabase('capture_uuid');
    });
    afterAll(() => db.drop());

    it('is a valid uuid that sorts in generation order', async () => {
      const gen = new UuidV7Generator();
      const ids = Array.from({ length: 20_000 }, () => gen.next());
      const [row] = await db.query(`SELECT (SELECT array_agg(u::text ORDER BY u) FROM unnest($1::uuid[]) u) = $1::text[] AS ordered`, [ids]);
      expect(row.ordered).toBe(true);
    });
  });
});
