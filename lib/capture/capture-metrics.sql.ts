import { quoteIdent, quoteLiteral } from '../shared/sql-quote';

/**
 * The slot's state and the WAL it holds back; no row when the slot is missing. The name is a
 * quoted literal (not a parameter) because MikroORM's and pg's placeholder syntaxes differ.
 */
export function slotMetricsSql(slotName: string): string {
  return `SELECT active, wal_status,
       pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS lag_bytes,
       safe_wal_size::text AS safe_wal_size
  FROM pg_catalog.pg_replication_slots
 WHERE slot_name = ${quoteLiteral(slotName)}`;
}

/** Commit time of the newest stored change, through the unique (commit_position, seq) index. */
export function newestChangeSql(schema: string, table: string): string {
  return `SELECT committed_at FROM ${quoteIdent(schema)}.${quoteIdent(table)} ORDER BY commit_position DESC, seq DESC LIMIT 1`;
}
