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
    '',
  ])('leaves %j alone', (sql) => {
    expect(isDataModifying(sql)).toBe(false);
  });
});
