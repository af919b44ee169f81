import type { Client } from 'pg';

/**
 * Makes the client's promise queries take turns. The worker's source connection serves the stream
 * handler (catalog reads on relation messages) and its timers (heartbeat, lag, publication
 * refresh); pg 8 warns when a query is sent while another one runs on the same client, and pg 9
 * refuses. Queries are independent statements (none of these callers opens a transaction), so
 * running them one after the other changes nothing but the order. Returns the same client.
 */
export function queriesInTurn<C extends Client>(client: C): C {
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  let tail: Promise<unknown> = Promise.resolve();
  const inTurn = (...args: unknown[]) => {
    const run = tail.then(() => query(...args));
    tail = run.catch(() => undefined);
    return run;
  };
  client.query = inTurn as C['query'];
  return client;
}
