/** How a redacted column's value is stored: `"[REDACTED]"`, or a keyed HMAC-SHA256 of it. */
export type BemiRedactMode = 'mask' | 'hmac';

/**
 * What is recorded of one table. Column names are database column names; inside the module,
 * MikroORM property names of the table's entity work too (`isCompleted` for `is_completed`).
 */
export interface BemiTableRule {
  /** `true`: the table is not recorded at all. A list: these columns' values are left out. */
  ignore?: boolean | string[];
  /** Record only these columns (primary key columns are always kept). */
  only?: string[];
  /**
   * Record that these columns changed, never their values: a list (stored with `redactMode`), or
   * a map column → mode.
   */
  redact?: string[] | Record<string, BemiRedactMode>;
}

/** Redaction and ignore rules: `BemiModule.forRoot({ rules })`, or `--rules <file.json>` in the CLI. */
export interface BemiRules {
  /** Per table: key `table` (any tracked schema) or `schema.table`. */
  tables?: Record<string, BemiTableRule>;
  /** Mode of columns listed in `redact` arrays and of `@BemiRedact()` without a mode. Default `mask`. */
  redactMode?: BemiRedactMode;
  /**
   * Secret for `hmac` mode (at least 16 characters; keep it out of source control). Equal values
   * give equal digests, so an auditor holding the key can tell whether a value was X.
   */
  hmacKey?: string;
  /**
   * Store no UPDATE whose only differences are in ignored (or not-`only`) columns, e.g. a bare
   * `updatedAt` bump. Needs `REPLICA IDENTITY FULL` on the table (otherwise the WAL has no old
   * values to compare, and such updates are kept). Default false.
   */
  skipIgnoredOnlyUpdates?: boolean;
}

/** What happens to one column's value. */
export type ColumnTreatment = 'ignore' | BemiRedactMode;

/** One table's rule after validation: per-column treatments and the optional allow-list. */
export interface CompiledTableRule {
  ignoreTable: boolean;
  columns: ReadonlyMap<string, ColumnTreatment>;
  /** Columns recorded when an allow-list (`only`) is set; primary key columns are added by the capture. */
  only?: ReadonlySet<string>;
}

/** All rules after validation, ready for the capture worker. */
export interface CompiledRules {
  /** Key: `schema.table`, or `table` for a rule that applies in every schema. */
  tables: ReadonlyMap<string, CompiledTableRule>;
  hmacKey?: string;
  skipIgnoredOnlyUpdates: boolean;
}
