import { randomFillSync } from 'node:crypto';

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Random bytes drawn at once: one system call per 512 ids instead of one per id. */
const POOL_IDS = 512;

/**
 * Time-ordered UUIDs (RFC 9562 version 7) for `changes.id`: 48 bits of Unix milliseconds, a
 * 12-bit counter that keeps ids of the same millisecond in generation order, 62 random bits.
 * A random uuid (gen_random_uuid) lands anywhere in the primary key index, so every insert
 * touches a random leaf page and splits pages in the middle; these append at the right edge.
 * PostgreSQL 14–17 have no uuidv7(), so the worker makes them.
 */
export class UuidV7Generator {
  private lastMs = 0;
  /** `lastMs` as the first two groups of an id (`xxxxxxxx-xxxx-`). */
  private timeText = '';
  private textMs = -1;
  private counter = 0;
  private readonly pool = Buffer.alloc(POOL_IDS * 8);
  private poolAt = this.pool.length;

  constructor(private readonly now: () => number = Date.now) {}

  next(): string {
    let ms = this.now();
    if (ms > this.lastMs) {
      this.lastMs = ms;
      // A random start in the lower half leaves room to count up within the millisecond.
      this.counter = this.byte() << 3;
    } else {
      ms = this.lastMs; // the same millisecond, or the clock stepped back: stay in order
      if (++this.counter > 0xfff) {
        // 4096 ids in one millisecond: borrow the next one (RFC 9562, 6.2) to keep the order.
        ms = ++this.lastMs;
        this.counter = 0;
      }
    }
    if (this.poolAt + 8 > this.pool.length) {
      randomFillSync(this.pool);
      this.poolAt = 0;
    }
    const p = this.pool;
    const o = this.poolAt;
    this.poolAt += 8;
    if (ms !== this.textMs) {
      const time = ms.toString(16).padStart(12, '0');
      this.timeText = `${time.slice(0, 8)}-${time.slice(8)}-`;
      this.textMs = ms;
    }
    return (
      `${this.timeText}7${(this.counter >> 8).toString(16)}${HEX[this.counter & 0xff]}-` +
      `${HEX[(p[o] & 0x3f) | 0x80]}${HEX[p[o + 1]]}-${p.toString('hex', o + 2, o + 8)}`
    );
  }

  private byte(): number {
    if (this.poolAt >= this.pool.length) {
      randomFillSync(this.pool);
      this.poolAt = 0;
    }
    return this.pool[this.poolAt++];
  }
}
