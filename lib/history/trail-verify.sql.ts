// The statements verify runs. They are built with the caller's quoting and placeholders, so the
// same walk runs on MikroORM (BemiHistory.verify) and on a plain pg client (nestjs-bemi verify).
import { CHAIN_ANCHOR_TABLE } from '../trail/chain-anchor';
import { CHAIN_HASH_COLUMN, CHAIN_PREVIOUS_POSITION_COLUMN, CHAIN_PREVIOUS_SEQ_COLUMN, CHAINED_COLUMNS, chainedColumnSql } from '../trail/change-chain';

/** How statements reach the database: `ident` quotes a name, `run` executes what `build` writes with `p(value)` placeholders. */
export interface VerifyDatabase {
  ident(name: string): string;
  run<R>(build: (p: (value: unknown) => string) => string): Promise<R[]>;
}

/** One row as verify reads it: `c<i>` is CHAINED_COLUMNS[i] as content takes it. */
export interface VerifyRow {
  database: string;
  commit_position: string;
  seq: number;
  hash: string | null;
  previous_position: string | null;
  previous_seq: number | null;
  [column: `c${number}`]: string | null;
}

export class TrailVerifySql {
  private readonly changes: string;
  private readonly anchors: string;
  private readonly columns: string;

  constructor(
    private readonly db: VerifyDatabase,
    private readonly schema: string,
    private readonly table: string,
  ) {
    this.changes = `${db.ident(schema)}.${db.ident(table)}`;
    this.anchors = `${db.ident(schema)}.${db.ident(CHAIN_ANCHOR_TABLE)}`;
    this.columns = CHAINED_COLUMNS.map((c, i) => `${chainedColumnSql(c, (n) => db.ident(n))} AS c${i}`).join(', ');
  }

  /** Whether the trail exists, has the chain columns and the anchor table. */
  async describe(): Promise<{ table: boolean; chain: boolean; anchors: boolean }> {
    const [row] = await this.db.run<{ table: boolean; chain: boolean; anchors: boolean }>(
      (p) => `SELECT pg_catalog.to_regclass(${p(this.regclass(this.table))}) IS NOT NULL AS "table",
        EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass(${p(this.regclass(this.table))}) AND attname = ${p(CHAIN_HASH_COLUMN)} AND NOT attisdropped) AS chain,
        pg_catalog.to_regclass(${p(this.regclass(CHAIN_ANCHOR_TABLE))}) IS NOT NULL AS anchors`,
    );
    return row;
  }

  /** The planner's row estimate of the trail (its partitions summed), for progress. */
  async estimatedRows(): Promise<number> {
    const [row] = await this.db.run<{ n: string | null }>(
      (p) => `SELECT sum(greatest(c.reltuples, 0))::bigint::text AS n FROM pg_catalog.pg_class c
        WHERE c.oid = pg_catalog.to_regclass(${p(this.regclass(this.table))})
           OR c.oid IN (SELECT inhrelid FROM pg_catalog.pg_inherits WHERE inhparent = pg_catalog.to_regclass(${p(this.regclass(this.table))}))`,
    );
    return Number(row?.n ?? 0);
  }

  async anchorRows(): Promise<Array<{ database: string; commit_position: string; seq: number; hash: string; committed_at: string }>> {
    return this.db.run((_p) => `SELECT database, commit_position::text AS commit_position, seq, encode(chain_hash, 'hex') AS hash, committed_at::text AS committed_at FROM ${this.anchors}`);
  }

  /** The next `limit` rows in stream order after `after` (keyset: one index range per page, however long the trail). */
  async page(after: { commitPosition: string; seq: number } | null, limit: number): Promise<VerifyRow[]> {
    const id = (n: string) => this.db.ident(n);
    return this.db.run<VerifyRow>(
      (p) => `SELECT ${id('database')} AS database, ${id('commit_position')}::text AS commit_position, ${id('seq')} AS seq,
          encode(${id(CHAIN_HASH_COLUMN)}, 'hex') AS hash, ${id(CHAIN_PREVIOUS_POSITION_COLUMN)}::text AS previous_position, ${id(CHAIN_PREVIOUS_SEQ_COLUMN)} AS previous_seq,
          ${this.columns}
        FROM ${this.changes} AS t
        ${after ? `WHERE (t.${id('commit_position')}, t.${id('seq')}) > (${p(after.commitPosition)}::bigint, ${p(after.seq)}::int)` : ''}
        -- The table's columns, not the text aliases of the select list (text sorts "10" before "9").
        ORDER BY t.${id('commit_position')}, t.${id('seq')}
        LIMIT ${Number(limit)}`,
    );
  }

  /** A name as to_regclass() reads it (a parameter, so quoted for SQL, not for the driver). */
  private regclass(name: string): string {
    return `"${this.schema.replace(/"/g, '""')}"."${name.replace(/"/g, '""')}"`;
  }
}
