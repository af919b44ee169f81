// How the replication connection is set up so that pgoutput's output can be stored as is: value
// formats pinned on the walsender, values kept as PostgreSQL's text, message contents copied out
// of the socket buffer. Separate from the session lifecycle because it is about the wire, not about
// when connections open and close.
import type { ClientConfig } from 'pg';
import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { VALUE_FORMAT_SETTINGS } from '../shared/value-formats';

/**
 * Session settings of the replication connection. pgoutput formats values with the walsender's
 * own settings, so they are pinned (lib/shared/value-formats.ts, which revert's HMAC check shares).
 */
const VALUE_FORMAT_OPTIONS = VALUE_FORMAT_SETTINGS.map(([name, value]) => `-c ${name}=${value}`).join(' ');

export function replicationConfig(source: ClientConfig): ClientConfig {
  return { ...source, options: [source.options, VALUE_FORMAT_OPTIONS].filter(Boolean).join(' ') };
}

/** pgoutput with values kept as PostgreSQL's text, and message contents copied out of the socket buffer. */
export class TextPgoutputPlugin extends PgoutputPlugin {
  constructor(
    options: ConstructorParameters<typeof PgoutputPlugin>[0],
    private readonly onReceived: () => void,
  ) {
    super(options);
  }

  override parse(buffer: Buffer): Pgoutput.Message {
    this.onReceived();
    const msg = super.parse(buffer);
    if (msg.tag === 'relation') {
      // The relation object is cached and reused for the tuples that follow: with text kept as
      // is, numeric/bigint keep their digits and timestamps their microseconds.
      for (const column of msg.columns) column.parser = keepText;
    } else if (msg.tag === 'message') {
      // The content is a view into a buffer the connection reuses for later data.
      msg.content = Buffer.from(msg.content);
    }
    return msg;
  }
}

const keepText = (text: string) => text;
