import { createContextCommenter, type BemiQueryHookOptions } from './bemi-query-hook';
import { isDataModifying } from './dml-detector';

/** Kysely's root node kinds of statements that change rows (kysely's own names). */
const WRITE_NODES = new Set(['InsertQueryNode', 'UpdateQueryNode', 'DeleteQueryNode', 'MergeQueryNode']);

/** The slice of a Kysely operation node this plugin reads. */
interface KyselyNode {
  readonly kind: string;
  readonly sqlFragments?: readonly string[];
  /** `WithNode` of a query with CTEs: `expressions[].expression` are the CTEs' queries. */
  readonly with?: { readonly expressions?: readonly { readonly expression?: KyselyNode }[] };
}

/**
 * A Kysely plugin that puts the current context in front of every data-modifying query, exactly as
 * the MikroORM `onQuery` hook does for the ORM's own statements. MikroORM 7's `em.getKysely()`
 * runs its queries past `onQuery`, so without it those writes are recorded with no context:
 *
 * ```ts
 * const db = em.getKysely().withPlugin(new BemiKyselyPlugin());
 * await db.updateTable('todo').set({ task: 'x' }).where('id', '=', 1).execute();
 * ```
 *
 * Add it last (after naming plugins). It wraps the query's node in a raw node that starts with
 * the comment, so kysely's compiler still writes the query itself, parameters and all; the
 * comment holds only the encoded context, which can never close the comment or alter the SQL.
 * It imports nothing from kysely, so it works with whichever copy MikroORM brings.
 */
export class BemiKyselyPlugin {
  private readonly comment: () => string | null;

  constructor(options: Pick<BemiQueryHookOptions, 'maxContextSize' | 'logger' | 'store' | 'redactContextKeys'> = {}) {
    this.comment = createContextCommenter(options);
  }

  transformQuery<N extends KyselyNode>(args: { node: N }): N {
    const { node } = args;
    try {
      if (!isWrite(node)) return node;
      const comment = this.comment();
      if (comment === null) return node;
      // A RawNode whose only parameter is the query node: compiled as `<comment><query>`.
      return Object.freeze({ kind: 'RawNode', sqlFragments: Object.freeze([comment, '']), parameters: Object.freeze([node]) }) as unknown as N;
    } catch {
      return node; // never break the user's query
    }
  }

  transformResult<R>(args: { result: R }): Promise<R> {
    return Promise.resolve(args.result);
  }
}

function isWrite(node: KyselyNode): boolean {
  if (WRITE_NODES.has(node.kind)) return true;
  // A SELECT over a data-modifying CTE (`db.with('x', (q) => q.deleteFrom(...))...`).
  if (node.with?.expressions?.some((cte) => cte.expression && isWrite(cte.expression))) return true;
  // sql`...` queries: the text around the parameters decides, as for em.execute().
  return node.kind === 'RawNode' && Array.isArray(node.sqlFragments) && isDataModifying(node.sqlFragments.join(' NULL '));
}
