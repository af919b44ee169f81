/**
 * A live table's identity through time, from the schema log capture keeps (`_bemi_schema_log`):
 * the names it had and, per period between two DDLs on it, which of its columns had other names
 * then. Columns are matched by attnum, so a renamed column is the same column and a column dropped
 * and added again under its old name is not. History uses it to read the trail under today's
 * names (table-identity.sql.ts turns it into SQL).
 */

/** A stream position: (commit_position, position) of a change or of a schema log entry. */
export interface StreamPoint {
  commitPosition: string;
  position: string;
}

/** One stretch of the table's life with one name and one set of column names. */
export interface TablePeriod {
  schema: string;
  table: string;
  /** Where it starts; undefined: from the trail's beginning (the table existed before its first entry). */
  from?: StreamPoint;
  /**
   * On the first period of a table created where another of its name had been dropped: the commit
   * times of its CREATE TABLE and of that drop (a moment before it was created is the other table's).
   */
  created?: { at: string; predecessorDroppedAt: string };
  /** Where the next period starts; undefined: it lasts until now. */
  to?: StreamPoint;
  /** [name then, name now] of each column renamed since. */
  renamed: Array<[string, string]>;
  /** Names then of columns dropped since whose name a column of today has: their values are not that column's. */
  shadowed: string[];
}

/** A schema log row as history reads it. */
export interface SchemaLogRow {
  commit_position: string;
  position: string;
  schema: string;
  table: string;
  columns: Array<{ attnum: number; name: string }>;
  created: boolean;
  dropped: boolean;
  /** Commit time, UTC ISO 8601 with microseconds. */
  committed_at: string;
  /** The latest drop of another table of the first name, if any. */
  predecessor_dropped_at?: string | null;
}

/**
 * The periods of a table from its schema log rows (in stream order), or undefined when the log
 * has nothing to add to today's plain reading: no entry, or one name and no renamed column ever
 * (and not re-created under the name of an earlier table).
 */
export function tablePeriods(rows: readonly SchemaLogRow[]): TablePeriod[] | undefined {
  const shapes = rows.filter((r) => !r.dropped);
  if (shapes.length === 0) return undefined;
  const now = new Map(shapes[shapes.length - 1].columns.map((c) => [c.attnum, c.name]));
  const names = new Set(now.values());
  const periods: TablePeriod[] = [];
  shapes.forEach((row, i) => {
    const renamed: Array<[string, string]> = [];
    const shadowed: string[] = [];
    for (const c of row.columns) {
      const current = now.get(c.attnum);
      if (current === undefined) {
        if (names.has(c.name)) shadowed.push(c.name);
      } else if (current !== c.name) renamed.push([c.name, current]);
    }
    // A table's first period is bounded only where another table had its name before: nothing
    // else can have left changes under that name earlier.
    const predecessor = i === 0 && row.created ? (row.predecessor_dropped_at ?? undefined) : undefined;
    const from = i === 0 && predecessor === undefined ? undefined : { commitPosition: row.commit_position, position: row.position };
    const previous = periods[periods.length - 1];
    // Consecutive periods that read the same way are one (most DDL renames nothing).
    if (previous && previous.schema === row.schema && previous.table === row.table && sameReading(previous, renamed, shadowed)) return;
    if (previous) previous.to = from;
    periods.push({ schema: row.schema, table: row.table, from, ...(predecessor ? { created: { at: row.committed_at, predecessorDroppedAt: predecessor } } : {}), renamed, shadowed });
  });
  const plain = periods.length === 1 && periods[0].from === undefined && periods[0].renamed.length === 0 && periods[0].shadowed.length === 0;
  return plain ? undefined : periods;
}

function sameReading(p: TablePeriod, renamed: Array<[string, string]>, shadowed: string[]): boolean {
  return JSON.stringify(p.renamed) === JSON.stringify(renamed) && JSON.stringify(p.shadowed) === JSON.stringify(shadowed);
}
