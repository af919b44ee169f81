import type { Client } from 'pg';
import type { RetentionSql } from './retention.sql';

/** A direct partition of a `changes` table partitioned by range of committed_at. */
export interface ChangesPartition {
  oid: number;
  /** Qualified, quoted name. */
  name: string;
  /** Exclusive upper bound of its committed_at range, as PostgreSQL printed it. */
  upperBound: string;
}

/** Partitions worth considering for a whole drop: plain tables with a finite upper bound. */
export async function rangePartitions(client: Client, sql: RetentionSql, qualifiedTable: string): Promise<ChangesPartition[]> {
  const { rows } = await client.query<{ oid: number; name: string; kind: string; bound: string }>(sql.partitions, [qualifiedTable]);
  const out: ChangesPartition[] = [];
  for (const row of rows) {
    // Sub-partitioned children and DEFAULT / MAXVALUE partitions are left to the batched DELETE.
    if (row.kind !== 'r') continue;
    const upper = /\bTO \('((?:[^']|'')*)'\)$/.exec(row.bound ?? '');
    if (upper) out.push({ oid: row.oid, name: row.name, upperBound: upper[1].replace(/''/g, "'") });
  }
  return out;
}

/**
 * Whether every change in the partition is older than its table's cutoff, so the partition can go
 * whole. `cutoffOf` gives a trail table's cutoff, or null when that table's changes are kept.
 * An empty partition goes when it lies before every cutoff in use.
 */
export async function partitionWhollyExpired(
  client: Client,
  sql: RetentionSql,
  partition: ChangesPartition,
  cutoffOf: (table: string) => string | null,
  allCutoffs: string[],
): Promise<boolean> {
  const { rows } = await client.query<{ table: string }>(sql.trailTables(partition.name));
  let cutoffs: string[];
  if (rows.length === 0) {
    cutoffs = allCutoffs;
  } else {
    cutoffs = [];
    for (const { table } of rows) {
      const cutoff = cutoffOf(table);
      if (cutoff === null) return false;
      cutoffs.push(cutoff);
    }
  }
  if (cutoffs.length === 0) return false;
  const { rows: older } = await client.query<{ older: boolean }>(sql.boundBeforeAll, [partition.upperBound, cutoffs]);
  return older[0].older === true;
}

/** lock_timeout of the DETACH: it needs a brief exclusive lock on the parent, and must not queue behind long readers. */
const DETACH_LOCK_TIMEOUT = '3s';

/**
 * Detaches the partition (one short transaction, which also raises the horizon of each table it
 * holds changes of), counts its rows and drops it. Returns the row
 * count, or null when the lock could not be had in time (its rows are then left to the batched
 * DELETE).
 */
export async function dropPartition(client: Client, sql: RetentionSql, partition: ChangesPartition, recordHorizons: boolean, recordAnchors = false): Promise<number | null> {
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL lock_timeout = '${DETACH_LOCK_TIMEOUT}'`);
    // In the detaching transaction: history never sees the rows gone without the horizon raised.
    if (recordHorizons) await client.query(sql.recordPartitionHorizons(partition.name));
    // Likewise the chain's anchor: verify never sees the rows gone without it.
    if (recordAnchors) await client.query(sql.recordPartitionAnchors(partition.name));
    await client.query(sql.detach(partition.name));
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    if ((e as { code?: string }).code === '55P03') return null; // lock_not_available
    throw e;
  }
  // Detached: nothing writes to it any more, so the count is exact.
  const { rows } = await client.query<{ rows: string }>(sql.countAll(partition.name));
  await client.query(sql.drop(partition.name));
  return Number(rows[0].rows);
}
