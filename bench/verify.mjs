// Tamper evidence (docs/verify.md): what the hash chain costs capture, chain off and on side by
// side in alternating runs over the same backlog, and how long verify takes over a trail of the
// full-mode size (1,000,000 changes; 100,000 in quick mode), built with valid links.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { connect, startWorker, waitForTransaction, writeRows } from './capture.mjs';
import { absoluteRow, median, ratioRow } from './report.mjs';

const require = createRequire(import.meta.url);
const { bemiChangesTableSql, bemiMigrationSql } = require('../dist/index.js');
const { chainContent, isoToMicros, linkHash } = require('../dist/trail/change-chain.js');
const { verifyTrail } = require('../dist/history/trail-verify.js');
const { pgVerifyDatabase } = require('../dist/cli/commands/verify.command.js');
const { from: copyFrom } = require('pg-copy-streams');

export async function runVerify({ adminUrl, quick, repetitions, log }) {
  const backlog = quick ? 30_000 : 200_000;
  const trailSize = quick ? 100_000 : 1_000_000;
  const admin = await connect(adminUrl);
  for (const name of ['bench_chain', 'bench_verify']) {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  }
  await admin.end();
  const rows = [];

  // ---- capture, chain off vs on ------------------------------------------------------------
  const url = new URL(adminUrl);
  url.pathname = '/bench_chain';
  const db = await connect(url.toString());
  await db.query(`CREATE TABLE bench_event (id bigserial PRIMARY KEY, name text NOT NULL, payload text NOT NULL, amount numeric NOT NULL, at timestamptz NOT NULL DEFAULT now())`);
  await db.query(bemiMigrationSql({ replicaIdentityFull: false }).up);
  let worker = startWorker(url.toString());
  await worker.ready;
  await worker.stop();
  const rates = { off: [], on: [] };
  try {
    // Alternating, so drift of the shared machine falls on both alike.
    for (let rep = 0; rep < Math.max(2, Math.ceil(repetitions / 2)); rep++) {
      for (const mode of rep % 2 ? ['on', 'off'] : ['off', 'on']) {
        await db.query('TRUNCATE changes');
        const lastXid = await writeRows(db, backlog, 1000);
        worker = startWorker(url.toString(), mode === 'on' ? { chain: true } : {});
        await worker.ready;
        const t = performance.now();
        await waitForTransaction(db, lastXid, backlog, 300_000);
        rates[mode].push(backlog / ((performance.now() - t) / 1000));
        await worker.stop();
        if (mode === 'on') {
          const [{ unlinked }] = (await db.query('SELECT count(*) FILTER (WHERE chain_hash IS NULL)::int AS unlinked FROM changes')).rows;
          if (unlinked !== 0) throw new Error(`${unlinked} changes without a link`);
        }
      }
      log(`verify: capture repetition ${rep + 1} done`);
    }
  } finally {
    await db.end();
  }
  rows.push(
    ratioRow('capture with chain: true (SHA-256)', 'changes/s', median(rates.on), median(rates.off), 'chain off', 'report', () => true, `backlog of ${backlog.toLocaleString('en-US')} changes, ${rates.on.length} runs each, alternating`),
  );

  // ---- verify over a large trail ------------------------------------------------------------
  const vurl = new URL(adminUrl);
  vurl.pathname = '/bench_verify';
  const vdb = await connect(vurl.toString());
  try {
    await vdb.query(bemiChangesTableSql().up);
    let t = performance.now();
    await seedChainedTrail(vdb, trailSize);
    log(`verify: ${trailSize} linked changes built in ${Math.round(performance.now() - t)} ms`);
    await vdb.query('VACUUM ANALYZE changes');
    const seconds = [];
    for (let rep = 0; rep < (quick ? 2 : 3); rep++) {
      t = performance.now();
      const result = await verifyTrail(pgVerifyDatabase(vdb), 'public', 'changes');
      seconds.push((performance.now() - t) / 1000);
      if (!result.ok || result.rows !== trailSize) throw new Error(`verify: ${JSON.stringify(result).slice(0, 300)}`);
    }
    const s = median(seconds);
    rows.push(absoluteRow(`verify, ${trailSize.toLocaleString('en-US')}-change trail`, 's', s, 'report', () => true, `${Math.round(trailSize / s).toLocaleString('en-US')} changes/s, pages of 5,000`));
  } finally {
    await vdb.end();
  }
  return rows;
}

/** `n` changes of captured shape, linked as the worker links them, loaded with COPY. */
async function seedChainedTrail(c, n) {
  const context = '{"endpoint":"/events","method":"POST","userId":187234}';
  const base = Date.parse('2026-01-01T00:00:00Z');
  const chunk = 20_000;
  let previous = null;
  for (let start = 0; start < n; start += chunk) {
    let text = '';
    for (let i = start; i < Math.min(n, start + chunk); i++) {
      const tx = Math.floor(i / 10);
      const seq = i % 10;
      const commitPosition = String(1_000_000 + tx * 100);
      const iso = new Date(base + tx).toISOString().replace('Z', '000Z');
      const after = `{"id":${i},"name":"event ${i}","payload":"${'p'.repeat(60)}","amount":${i}.25,"at":"2026-01-01 00:00:00.${String(i % 1000000).padStart(6, '0')}+00"}`;
      const row = { primaryKey: String(i), previousKey: null, before: '{}', after, context, database: 'bench', schema: 'public', table: 'bench_event', operation: 'CREATE', committedAt: isoToMicros(iso), transactionId: String(tx + 1), position: String(Number(commitPosition) - 10 + seq), commitPosition, seq };
      const hash = linkHash(previous?.hash ?? null, chainContent((col) => row[col.field]));
      const pointer = previous ? `${previous.commitPosition}\t${previous.seq}` : '\\N\t\\N';
      text += `\\N\t${row.before}\t${row.after}\t${context}\tbench\tpublic\tbench_event\tCREATE\t${iso}\t${iso}\t${row.transactionId}\t${row.position}\t${commitPosition}\t${seq}\t\\\\x${hash.toString('hex')}\t${pointer}\t${i}\n`;
      previous = { commitPosition, seq, hash };
    }
    const copy = c.query(copyFrom(`COPY changes (previous_key, before, after, context, database, schema, "table", operation, committed_at, queued_at, transaction_id, position, commit_position, seq, chain_hash, chain_previous_position, chain_previous_seq, primary_key) FROM STDIN`));
    await new Promise((resolve, reject) => {
      copy.on('finish', resolve);
      copy.on('error', reject);
      copy.end(text);
    });
  }
}
