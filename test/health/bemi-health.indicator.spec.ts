import { evaluate } from '../../lib/health/bemi-health.indicator';
import type { BemiCaptureMetrics } from '../../lib/capture/capture-metrics';

const healthy: BemiCaptureMetrics = {
  workerState: 'streaming',
  slot: { name: 's', exists: true, active: true, walStatus: 'reserved', lagBytes: 1000, safeWalSizeBytes: null },
  lagSeconds: 0,
  newestChangeAt: new Date(),
  newestChangeAgeSeconds: 5,
  changesWritten: 10,
  stored: { invalidContexts: 0, untrustedContexts: 0, unknownKeys: 0, unstorableChanges: 0, lastUnstorable: null },
  measuredAt: new Date(),
};

describe('evaluate (health thresholds)', () => {
  it('finds nothing wrong with a streaming worker within the limits', () => {
    expect(evaluate(healthy, {})).toEqual([]);
    expect(evaluate({ ...healthy, workerState: null }, {})).toEqual([]);
  });

  it('names each problem', () => {
    expect(evaluate({ ...healthy, workerState: 'reconnecting' }, {})).toEqual(['the capture worker is reconnecting']);
    expect(evaluate({ ...healthy, slot: { ...healthy.slot, walStatus: 'lost' } }, {})[0]).toMatch(/slot "s" is lost \(max_slot_wal_keep_size exceeded\)/);
    expect(evaluate({ ...healthy, slot: { ...healthy.slot, walStatus: 'unreserved' } }, {})[0]).toMatch(/will be invalidated at the next checkpoint/);
    expect(evaluate({ ...healthy, workerState: null, slot: { ...healthy.slot, active: false } }, {})).toEqual(['no capture worker is connected to slot "s"']);
    expect(evaluate(healthy, { maxLagBytes: 999 })).toEqual(['the slot holds 1000 bytes of WAL (limit 999)']);
    expect(evaluate({ ...healthy, lagSeconds: 61 }, {})).toEqual(['capture is 61.0 s behind (limit 60 s)']);
    expect(evaluate(healthy, { maxNewestChangeAgeSeconds: 4 })).toEqual(['the newest change is 5 s old (limit 4 s)']);
    expect(evaluate({ ...healthy, slot: { ...healthy.slot, exists: false } }, {})).toEqual(['replication slot "s" does not exist (capture never started, or the slot was dropped)']);
  });
});
