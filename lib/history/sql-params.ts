/**
 * How every history statement is assembled and quoted: its own file because the reader, time
 * travel, revert and the catalog all build statements the same way.
 *
 * Statements run through MikroORM's `em.execute()`, which inlines `?` parameters with proper
 * escaping (and which is where the Bemi context hook sees the revert writes). Two consequences:
 * a literal `?` must be written `\?` (only possible inside quoted identifiers, see `ident`), and
 * array parameters would expand to lists, so each value gets its own placeholder.
 */

export interface BuiltSql {
  sql: string;
  params: unknown[];
}

/**
 * Collects parameters in any order while a statement is assembled; `build()` renumbers them in
 * textual order. This lets fragments be composed (and a value be used twice) without counting.
 */
export class SqlParams {
  private readonly values: unknown[] = [];

  p(value: unknown): string {
    this.values.push(value === undefined ? null : value);
    return `\u0000${this.values.length - 1}\u0000`;
  }

  build(text: string): BuiltSql {
    const params: unknown[] = [];
    const sql = text.replace(/\u0000(\d+)\u0000/g, (_m, i: string) => {
      params.push(this.values[Number(i)]);
      return '?';
    });
    // MikroORM leaves a statement without parameters untouched, `\?` included.
    return params.length ? { sql, params } : { sql: sql.replace(/\\\?/g, '?'), params };
  }
}

/** Quotes an identifier; `?` is escaped for MikroORM's placeholder replacement. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""').replace(/\?/g, '\\?')}"`;
}

export function qualified(schema: string, name: string): string {
  return `${ident(schema)}.${ident(name)}`;
}
