import type { BemiCaptureWorker } from '../../lib/capture/capture.worker';
import { BEMI_TRUST_MESSAGE_PREFIX } from '../../lib/shared/wire-format';
import { withClient, type TestDatabase } from '../support/database';
import type { RecordingLogger } from '../support/recording-logger';
import { createCaptureDatabase, startWorker, stopAndDropSlot, syncCapture, withContext } from './support/capture-helpers';

/**
 * Whose context is believed (docs/security.md): the trigger names the roles of every statement,
 * capture believes context only from trusted roles, and only the trigger may emit it.
 */
describe('capture: database roles and trusted context (real PostgreSQL, in-process worker)', () => {
  let db: TestDatabase;
  let worker: BemiCaptureWorker | undefined;
  let logger: RecordingLogger;
  let other: string;
  let otherUrl: string;

  const rowsOf = (id: number) =>
    db.query<{ role: string | null; session_role: string | null; context: Record<string, any> }>(`SELECT role, session_role, context FROM changes WHERE "table" = 'todo' AND primary_key = $1`, [String(id)]);

  beforeAll(async () => {
    db = await createCaptureDatabase('capture_trust', `CREATE TABLE todo (id int PRIMARY KEY, task text)`);
    other = `other_${db.name.slice(-8)}`;
    await db.query(`CREATE ROLE ${other} LOGIN PASSWORD 'other'; GRANT ALL ON todo TO ${other}; GRANT ${other} TO postgres`);
    const url = new URL(db.url);
    url.username = other;
    url.password = 'other';
    otherUrl = url.toString();
  });

  afterAll(async () => {
    await stopAndDropSlot(worker, db);
    await db.query(`DROP OWNED BY ${other}`);
    await db.drop();
    await withClient(db.url.replace(`/${db.name}`, '/postgres'), (c) => c.query(`DROP ROLE ${other}`));
  });

  describe('with the default trust (the trigger functions\' owner and the worker\'s role)', () => {
    beforeAll(async () => {
      ({ worker, logger } = await startWorker(db));
    });

    afterAll(async () => {
      await stopAndDropSlot(worker, db);
      worker = undefined;
    });

    it('says whose context it believes when it starts', () => {
      expect(logger.messages('log').join('\n')).toMatch(/Context is believed from role\(s\) "postgres" \(the trigger functions' owners and this worker's role; set capture.trustedRoles to choose\)/);
    });

    it('records the roles of every change, with or without context, and believes the trusted role', async () => {
      await db.query(withContext({ userId: 1 }, `INSERT INTO todo VALUES (1, 'a')`));
      await db.query(`INSERT INTO todo VALUES (2, 'b')`);
      await syncCapture(db);
      expect(await rowsOf(1)).toEqual([{ role: 'postgres', session_role: 'postgres', context: { userId: 1 } }]);
      expect(await rowsOf(2)).toEqual([{ role: 'postgres', session_role: 'postgres', context: {} }]);
    });

    it('keeps the context of any other role apart, marked untrusted, and counts it', async () => {
      const before = worker!.status().untrustedContexts;
      await withClient(otherUrl, (c) => c.query(withContext({ userId: 'admin' }, `INSERT INTO todo VALUES (3, 'forged')`)));
      await withClient(otherUrl, (c) => c.query(`UPDATE todo SET task = 'plain' WHERE id = 3`));
      await syncCapture(db);
      const [created, updated] = await db.query<{ role: string; context: Record<string, unknown> }>(
        `SELECT role, context FROM changes WHERE "table" = 'todo' AND primary_key = '3' ORDER BY commit_position`,
      );
      expect(created).toEqual({ role: other, context: { _bemi: { untrusted: `role "${other}" is not trusted`, context: { userId: 'admin' } } } });
      // a query for the claimed actor does not find it
      expect(await db.query(`SELECT 1 FROM changes WHERE context @> '{"userId":"admin"}'`)).toEqual([]);
      // nothing to doubt in no context
      expect(updated).toEqual({ role: other, context: {} });
      expect(worker!.status().untrustedContexts).toBe(before + 1);
      expect(logger.messages('warn').filter((m) => m.includes(`role "${other}" is not trusted`))).toHaveLength(1);
    });

    it('names the role a trusted session acted as after SET ROLE, and still believes it (its login is trusted)', async () => {
      await withClient(db.url, async (c) => {
        await c.query(`SET ROLE ${other}`);
        await c.query(withContext({ job: 'import' }, `INSERT INTO todo VALUES (4, 'as other')`));
      });
      await syncCapture(db);
      expect(await rowsOf(4)).toEqual([{ role: other, session_role: 'postgres', context: { job: 'import' } }]);
    });

    it("refuses the issue's forgery: a role with DML rights may no longer emit a context message of its own", async () => {
      await withClient(otherUrl, async (c) => {
        await c.query('BEGIN');
        await expect(c.query(`SELECT pg_logical_emit_message(true, '_bemi', '{"userId":"admin"}')`)).rejects.toMatchObject({ code: '42501' });
        await c.query('ROLLBACK');
      });
    });

    it('does not believe a message without roles (the old format), which only a role emitting its own can send now', async () => {
      // a superuser's statement that emits one itself, after its trigger ran
      await db.query(`WITH m AS (SELECT pg_logical_emit_message(true, '_bemi', '{"userId":"admin"}')) INSERT INTO todo SELECT 5, 'old format' FROM m`);
      await syncCapture(db);
      expect(await rowsOf(5)).toEqual([
        { role: null, session_role: null, context: { _bemi: { untrusted: 'a context message without roles, which the trigger no longer sends', context: { userId: 'admin' } } } },
      ]);
    });
  });

  it('believes exactly capture.trustedRoles when given', async () => {
    ({ worker, logger } = await startWorker(db, { trustedRoles: [other] }));
    try {
      await db.query(withContext({ userId: 6 }, `INSERT INTO todo VALUES (6, 'by postgres')`));
      await withClient(otherUrl, (c) => c.query(withContext({ userId: 7 }, `INSERT INTO todo VALUES (7, 'by other')`)));
      await syncCapture(db);
      expect((await rowsOf(6))[0].context).toEqual({ _bemi: { untrusted: 'role "postgres" is not trusted', context: { userId: 6 } } });
      expect((await rowsOf(7))[0].context).toEqual({ userId: 7 });
      expect(logger.messages('log').join('\n')).toMatch(new RegExp(`Context is believed from role\\(s\\) "${other}"; `));
    } finally {
      await stopAndDropSlot(worker, db);
      worker = undefined;
    }
  });

  it('while a trigger older than roles is installed, believes old-format messages until the migration says it ran', async () => {
    // An old trigger function (SECURITY INVOKER, context alone) in another schema.
    await db.query(`CREATE SCHEMA legacy; CREATE FUNCTION legacy._bemi_emit_context() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`);
    try {
      ({ worker, logger } = await startWorker(db));
      expect(logger.messages('warn').join('\n')).toMatch(/The context trigger in schema\(s\) legacy predates roles/);
      const oldFormat = (id: number) => db.query(`WITH m AS (SELECT pg_logical_emit_message(true, '_bemi', '{"userId":${id}}')) INSERT INTO todo SELECT ${id}, 'old' FROM m`);
      await oldFormat(8);
      // the migration's own message, as `up` emits it in its transaction
      await db.query(`SELECT pg_logical_emit_message(true, $1, '2')`, [BEMI_TRUST_MESSAGE_PREFIX]);
      await oldFormat(9);
      await syncCapture(db);
      expect((await rowsOf(8))[0].context).toEqual({ userId: 8 });
      expect((await rowsOf(9))[0].context).toMatchObject({ _bemi: { untrusted: expect.stringMatching(/without roles/), context: { userId: 9 } } });
    } finally {
      await stopAndDropSlot(worker, db);
      worker = undefined;
      await db.query(`DROP SCHEMA legacy CASCADE`);
    }
  });
});
