// The SQL of the schema log's source side: the event trigger that emits a captured table's shape
// in the transaction of each DDL on it, and the statement that emits the shapes of tables the log
// has never seen. The destination table it fills is in lib/trail/changes-table.ts.
import { createHash } from 'node:crypto';
import type { ResolvedCaptureOptions } from '../options/capture-options';
import { quoteIdent, quoteLiteral, textArray } from '../shared/sql-quote';
import { BEMI_SCHEMA_END_MESSAGE_PREFIX, BEMI_SCHEMA_MESSAGE_PREFIX } from '../shared/wire-format';
import { createEventTriggerSql, excludedTableNames, trackedRelationCondition } from './new-table-publisher';

/** Commands that create a table: its first entry then marks where its life (and history) begins. */
const CREATING_TAGS = `'CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO'`;

type RecorderOptions = Pick<ResolvedCaptureOptions, 'publicationName' | 'schemas' | 'excludeTables'>;

/** Name of the schema log's event triggers (and of their function) for one publication. */
export function schemaRecorderName(publication: string): string {
  const name = `_bemi_shapes_${publication}`;
  return Buffer.byteLength(name) <= 63 ? name : `_bemi_shapes_${createHash('sha1').update(publication).digest('hex').slice(0, 24)}`;
}

/**
 * JSON text of the shape of the table `c` (pg_class, joined to its pg_namespace `n`): OID, schema,
 * name, columns in attnum order (dropped ones left out, as pgoutput does) and primary key column
 * names in key order; `created`: an SQL boolean, whether this DDL created the table. The one
 * definition of a shape: the event trigger and the first emission use it.
 */
function shapeJson(created: string): string {
  return `pg_catalog.json_build_object(
      'oid', c.oid::bigint, 'schema', n.nspname, 'table', c.relname, 'dropped', false, 'created', ${created},
      'columns', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                             'attnum', a.attnum, 'name', a.attname, 'typeOid', a.atttypid::bigint,
                             'type', pg_catalog.format_type(a.atttypid, a.atttypmod), 'generated', a.attgenerated <> '') ORDER BY a.attnum)
                            FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::json),
      'key', COALESCE((SELECT pg_catalog.json_agg(a.attname ORDER BY k.ord)
                         FROM pg_catalog.pg_index i
                         CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                        WHERE i.indrelid = c.oid AND i.indisprimary), '[]'::json))::text`;
}

/**
 * DDL of the schema recorder: after every CREATE / ALTER of a captured table (ddl_command_end) it
 * emits the table's new shape, and after a DROP (sql_drop) a dropped mark, as transactional
 * `_bemi_schema` messages. They reach the WAL only if the DDL commits, in its place in the stream:
 * every change decoded after one was written under that shape, every change before it under an
 * earlier one. SECURITY DEFINER with a pinned search path, like the publisher; a failure never
 * fails the user's DDL (a warning, and capture reads the catalog for that table as before).
 */
export function schemaRecorderSql(options: RecorderOptions): { up: string; down: string } {
  const name = schemaRecorderName(options.publicationName);
  const fn = `${quoteIdent(options.schemas[0])}.${quoteIdent(name)}`;
  const schemas = textArray(options.schemas);
  const excluded = textArray(excludedTableNames(options));
  const prefix = quoteLiteral(BEMI_SCHEMA_MESSAGE_PREFIX);
  const up = `-- nestjs-bemi capture: schema log (up)
CREATE OR REPLACE FUNCTION ${fn}() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $bemi$
DECLARE
  shapes text[];
  shape text;
BEGIN
  -- Only reading happens under the exception handler: a message emitted inside it belongs to a
  -- subtransaction, and the decoder was seen to replay such a message after the rows the next
  -- statement wrote (it merges subtransactions by LSN, and gives a message the LSN where it ends).
  BEGIN
    IF TG_EVENT = 'sql_drop' THEN
      SELECT pg_catalog.array_agg(pg_catalog.json_build_object('oid', d.objid::bigint, 'schema', d.schema_name, 'table', d.object_name,
                                                               'dropped', true, 'created', false, 'columns', '[]'::json, 'key', '[]'::json)::text ORDER BY d.objid)
        INTO shapes
        FROM pg_catalog.pg_event_trigger_dropped_objects() d
       WHERE d.object_type = 'table' AND d.schema_name = ANY (${schemas})
         AND NOT (d.object_name = ANY (${excluded})) AND d.object_name NOT LIKE '\\_bemi%';
    ELSE
      SELECT pg_catalog.array_agg(${shapeJson('x.created')} ORDER BY c.oid)
        INTO shapes
        FROM (SELECT cmd.objid, pg_catalog.bool_or(cmd.command_tag IN (${CREATING_TAGS})) AS created
                FROM pg_catalog.pg_event_trigger_ddl_commands() cmd
               WHERE cmd.classid = 'pg_catalog.pg_class'::regclass GROUP BY cmd.objid) x
        JOIN pg_catalog.pg_class c ON c.oid = x.objid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       WHERE ${trackedRelationCondition(schemas, excluded)};
    END IF;
  EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'nestjs-bemi: could not read the new shape of a captured table for the schema log (%); capture reads its key from the catalog until its next DDL', SQLERRM;
    RETURN;
  END;
  IF shapes IS NULL THEN
    RETURN;
  END IF;
  FOREACH shape IN ARRAY shapes LOOP
    PERFORM pg_catalog.pg_logical_emit_message(true, ${prefix}, shape);
  END LOOP;
  -- So that no shape ends where the next row of the transaction starts (see the prefix's note).
  PERFORM pg_catalog.pg_logical_emit_message(true, ${quoteLiteral(BEMI_SCHEMA_END_MESSAGE_PREFIX)}, '');
END
$bemi$;
${createEventTriggerSql(name, 'ddl_command_end', fn)}
${createEventTriggerSql(`${name}_drop`, 'sql_drop', fn)}
`;
  // The function is found through its trigger: whoever drops it need not know the schema it is in.
  const down = `-- nestjs-bemi capture: schema log (down)
DO $bemi$
DECLARE
  fn regprocedure;
BEGIN
  SELECT evtfoid::regprocedure INTO fn FROM pg_catalog.pg_event_trigger WHERE evtname = ${quoteLiteral(name)};
  EXECUTE pg_catalog.format('DROP EVENT TRIGGER IF EXISTS %I', ${quoteLiteral(name)});
  EXECUTE pg_catalog.format('DROP EVENT TRIGGER IF EXISTS %I', ${quoteLiteral(`${name}_drop`)});
  IF fn IS NOT NULL THEN
    EXECUTE pg_catalog.format('DROP FUNCTION %s', fn);
  END IF;
END
$bemi$;
`;
  return { up, down };
}

/**
 * Emits the shape of each table in `$1` (OIDs) as a `_bemi_schema` message, in one transaction:
 * the first entry of tables the log has never seen (at the first start, or when capture had no
 * schema log before). Changes decoded after it use it; older ones read the catalog, as before.
 */
export function emitShapesSql(): string {
  return `SELECT pg_catalog.pg_logical_emit_message(true, ${quoteLiteral(BEMI_SCHEMA_MESSAGE_PREFIX)}, ${shapeJson('false')})
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = ANY ($1::oid[])`;
}
