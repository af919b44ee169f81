/**
 * Decides whether a SQL text may modify table data, so that context is attached to writes and
 * SELECTs are never touched. It reads the text the way PostgreSQL's lexer would at the level
 * that matters here: string literals ('...', E'...', $tag$...$tag$), quoted identifiers and
 * comments are skipped, so a word inside a value never counts.
 *
 * A text is data-modifying when one of its statements starts with INSERT, UPDATE, DELETE, MERGE,
 * TRUNCATE, COPY, CALL, DO or EXECUTE (of a prepared statement, which may be any of them), or
 * starts with WITH and contains INSERT/UPDATE/DELETE/MERGE (a data-modifying CTE) other than the
 * row-lock clauses `FOR UPDATE` / `FOR NO KEY UPDATE`. `EXPLAIN [ANALYZE] [VERBOSE] [(options)]`
 * is read through: `EXPLAIN ANALYZE` runs the statement after it, and the trigger reads the
 * comment in front of the whole text.
 */
const STARTERS = new Set(['insert', 'update', 'delete', 'merge', 'truncate', 'copy', 'call', 'do', 'execute']);
const CTE_WRITES = new Set(['insert', 'update', 'delete', 'merge']);
/** Words that may follow EXPLAIN before the statement it explains (the old, unparenthesised syntax). */
const EXPLAIN_WORDS = new Set(['analyze', 'analyse', 'verbose']);

export function isDataModifying(sql: string): boolean {
  let statementStart = true;
  let inWith = false;
  let inExplain = false;
  let previousWord = '';
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const ch = sql.charCodeAt(i);
    // whitespace
    if (ch === 32 || (ch >= 9 && ch <= 13)) {
      i++;
      continue;
    }
    // -- line comment
    if (ch === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      const end = sql.indexOf('\n', i + 2);
      i = end === -1 ? n : end + 1;
      continue;
    }
    // /* block comment */ (PostgreSQL nests them)
    if (ch === 47 /* / */ && sql.charCodeAt(i + 1) === 42) {
      i = skipBlockComment(sql, i);
      continue;
    }
    if (ch === 59 /* ; */) {
      statementStart = true;
      inWith = false;
      inExplain = false;
      previousWord = '';
      i++;
      continue;
    }
    // EXPLAIN's option list: (ANALYZE, FORMAT JSON, ...), then the explained statement
    if (ch === 40 /* ( */ && inExplain) {
      const end = sql.indexOf(')', i);
      i = end === -1 ? n : end + 1;
      continue;
    }
    // 'literal' (also E'...' and U&'...' once the prefix word is consumed below)
    if (ch === 39 /* ' */) {
      const prev = sql.charCodeAt(i - 1);
      const escapes = previousWord === 'e' && (prev === 69 || prev === 101); // E'...' directly adjacent
      i = skipQuoted(sql, i, 39, escapes);
      afterToken();
      continue;
    }
    // "quoted identifier"
    if (ch === 34 /* " */) {
      i = skipQuoted(sql, i, 34, false);
      afterToken();
      continue;
    }
    // $tag$ dollar-quoted string $tag$ (and plain $1 parameters, which are not strings)
    if (ch === 36 /* $ */) {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? n : end + tag[0].length;
        afterToken();
        continue;
      }
    }
    if (isWordStart(ch)) {
      let j = i + 1;
      while (j < n && isWordPart(sql.charCodeAt(j))) j++;
      const word = sql.slice(i, j).toLowerCase();
      if (statementStart) {
        if (STARTERS.has(word)) return true;
        if (word === 'explain' || (inExplain && EXPLAIN_WORDS.has(word))) {
          inExplain = true;
          previousWord = word;
          i = j;
          continue;
        }
        inExplain = false;
        inWith = word === 'with';
        statementStart = false;
        // Fast path for the common single SELECT: nothing after it can start another statement.
        if (!inWith && sql.indexOf(';', j) === -1) return false;
      } else if (inWith && CTE_WRITES.has(word) && !(word === 'update' && (previousWord === 'for' || previousWord === 'key'))) {
        return true;
      }
      // Remember E/e right before a quote so E'..' is read with backslash escapes.
      previousWord = word;
      i = j;
      continue;
    }
    afterToken();
    i++;
  }
  return false;

  function afterToken(): void {
    statementStart = false;
    previousWord = '';
  }
}

function isWordStart(ch: number): boolean {
  return (ch >= 65 && ch <= 90) || (ch >= 97 && ch <= 122) || ch === 95 || ch > 127;
}

function isWordPart(ch: number): boolean {
  return isWordStart(ch) || (ch >= 48 && ch <= 57) || ch === 36;
}

function skipBlockComment(sql: string, start: number): number {
  let depth = 0;
  let i = start;
  while (i < sql.length) {
    if (sql.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (sql.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else {
      i++;
    }
  }
  return sql.length;
}

function skipQuoted(sql: string, start: number, quote: number, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const ch = sql.charCodeAt(i);
    if (backslashEscapes && ch === 92 /* \ */) {
      i += 2;
      continue;
    }
    if (ch === quote) {
      if (sql.charCodeAt(i + 1) === quote) {
        i += 2; // doubled quote
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return sql.length;
}
