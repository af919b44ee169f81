import { isDataModifying } from '../../lib/orm/dml-detector';

describe('isDataModifying', () => {
  it.each([
    'insert into "todo" ("task") values (?)',
    'UPDATE "todo" SET "task" = ? WHERE "id" = ?',
    'delete from "todo" where "id" in (?, ?)',
    'merge into t using s on t.id = s.id when matched then update set x = 1',
    'truncate table "todo"',
    'copy todo from stdin',
    'call archive_todos()',
    "do $$ begin perform 1; end $$",
    '  \n\t insert into t values (1)',
    '/* leading */ -- and a line comment\n insert into t values (1)',
    '/* nested /* comment */ still comment */ update t set a = 1',
    'with gone as (delete from t returning id) select count(*) from gone',
    'WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x',
    'select 1; delete from t',
    "select 'x'; update t set a = 'y'",
    'EXPLAIN ANALYZE INSERT INTO t VALUES (1)',
    'explain analyse verbose update t set a = 1',
    'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) DELETE FROM t',
    'explain (analyze) with x as (select 1) insert into t select * from x',
    'explain analyze with gone as (delete from t returning id) select * from gone',
    '/* a caller comment */ EXPLAIN ANALYZE MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE',
    'execute insert_todo(1)',
  ])('treats %j as a write', (sql) => {
    expect(isDataModifying(sql)).toBe(true);
  });

  it.each([
    'select * from "todo" where "id" = ?',
    "select * from todo where task = 'insert into todo values (1)'",
    "select * from todo where task = E'it\\'s; delete from todo'",
    'select $$; update t set a = 1$$',
    'select $tag$ ; delete from t $tag$ as x',
    'select "update" from t',
    'select * from t for update',
    'with x as (select * from t for update) select * from x',
    'with x as (select * from t for no key update) select * from x',
    'select 1 -- ; delete from t',
    'select 1 /* ; delete from t */',
    'begin',
    'commit',
    'savepoint trx1',
    'set local statement_timeout = 1000',
    'explain select 1',
    'explain analyze select * from t',
    'EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM t',
    'explain (analyze) with x as (select * from t for update) select * from x',
    "prepare insert_todo as select 'insert'",
    '',
  ])('leaves %j alone', (sql) => {
    expect(isDataModifying(sql)).toBe(false);
  });
});
