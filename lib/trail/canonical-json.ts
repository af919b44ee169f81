/**
 * One text for every JSON document that jsonb stores as the same value. The chain hashes a
 * change's images when the worker has them as the JSON text it built, and again when verify reads
 * them back from jsonb (keys sorted its own way, duplicates dropped, numbers reprinted, escapes
 * decoded): both must arrive at the same bytes.
 *
 * The rules are jsonb's own: the last of duplicate keys wins, a string is its decoded characters,
 * a number is the value PostgreSQL's numeric prints (`1.50e1` → `15.0`, `-0` → `0`; digits are
 * never rounded through a float). The output sorts keys by UTF-16 code units and has no spaces.
 */
export function canonicalJson(text: string): string {
  const parser = new CanonicalParser(text);
  const out = parser.value();
  parser.end();
  return out;
}

/**
 * The text PostgreSQL's numeric prints for a JSON number literal (as jsonb stores numbers): no
 * exponent, `max(0, fraction digits − exponent)` fraction digits, no sign on zero.
 */
export function canonicalNumber(literal: string): string {
  const m = NUMBER.exec(literal);
  if (!m) throw new SyntaxError(`not a JSON number: ${literal}`);
  const [, sign, int, frac = '', exp] = m;
  if (exp === undefined) return sign && ZERO.test(int + frac) ? literal.slice(1) : literal;
  const e = Number(exp) - frac.length;
  // Beyond numeric's range jsonb refuses the value anyway; keep the text rather than build megabytes.
  if (Math.abs(e) > MAX_EXPONENT) return literal;
  const digits = int + frac;
  let whole: string;
  let fraction = '';
  if (e >= 0) {
    whole = digits + '0'.repeat(e);
  } else {
    const scale = -e;
    whole = digits.length > scale ? digits.slice(0, digits.length - scale) : '0';
    fraction = digits.length > scale ? digits.slice(digits.length - scale) : digits.padStart(scale, '0');
  }
  whole = whole.replace(/^0+(?=\d)/, '');
  const body = fraction ? `${whole}.${fraction}` : whole;
  return sign && !ZERO.test(digits) ? `-${body}` : body;
}

const NUMBER = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;
const ZERO = /^0+$/;
/** numeric holds up to 131072 digits before the point and 16383 after. */
const MAX_EXPONENT = 140_000;

class CanonicalParser {
  private i = 0;
  constructor(private readonly s: string) {}

  end(): void {
    this.space();
    if (this.i !== this.s.length) this.fail('unexpected text after the value');
  }

  value(): string {
    this.space();
    const c = this.s.charCodeAt(this.i);
    if (c === 0x7b) return this.object();
    if (c === 0x5b) return this.array();
    if (c === 0x22) return JSON.stringify(this.string());
    if (c === 0x74) return this.literal('true');
    if (c === 0x66) return this.literal('false');
    if (c === 0x6e) return this.literal('null');
    return this.number();
  }

  private object(): string {
    this.i++;
    // Last value wins, as in jsonb; the order of first appearance does not matter (keys are sorted).
    const members = new Map<string, string>();
    this.space();
    if (this.s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return '{}';
    }
    for (;;) {
      this.space();
      if (this.s.charCodeAt(this.i) !== 0x22) this.fail('expected a key');
      const key = this.string();
      this.space();
      if (this.s.charCodeAt(this.i) !== 0x3a) this.fail('expected ":"');
      this.i++;
      members.set(key, this.value());
      this.space();
      const c = this.s.charCodeAt(this.i++);
      if (c === 0x7d) break;
      if (c !== 0x2c) this.fail('expected "," or "}"');
    }
    const keys = [...members.keys()].sort();
    let out = '{';
    for (let k = 0; k < keys.length; k++) out += `${k ? ',' : ''}${JSON.stringify(keys[k])}:${members.get(keys[k])}`;
    return `${out}}`;
  }

  private array(): string {
    this.i++;
    this.space();
    if (this.s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return '[]';
    }
    let out = '[';
    for (let first = true; ; first = false) {
      out += (first ? '' : ',') + this.value();
      this.space();
      const c = this.s.charCodeAt(this.i++);
      if (c === 0x5d) break;
      if (c !== 0x2c) this.fail('expected "," or "]"');
    }
    return `${out}]`;
  }

  /** The decoded characters of the string starting at `i` (a `"`). */
  private string(): string {
    const start = this.i + 1;
    let end = this.s.indexOf('"', start);
    const raw = end < 0 ? '' : this.s.slice(start, end);
    if (end >= 0 && !raw.includes('\\')) {
      // Most strings have no escape: their characters are their text.
      this.i = end + 1;
      return raw;
    }
    // Find the closing quote: one preceded by an even number of backslashes.
    for (;;) {
      if (end < 0) this.fail('unterminated string');
      let slashes = 0;
      while (this.s.charCodeAt(end - 1 - slashes) === 0x5c) slashes++;
      if (slashes % 2 === 0) break;
      end = this.s.indexOf('"', end + 1);
    }
    this.i = end + 1;
    return JSON.parse(this.s.slice(start - 1, end + 1)) as string;
  }

  private number(): string {
    const start = this.i;
    while (this.i < this.s.length && NUMBER_CHAR[this.s.charCodeAt(this.i)] === 1) this.i++;
    if (this.i === start) this.fail('expected a value');
    return canonicalNumber(this.s.slice(start, this.i));
  }

  private literal(word: string): string {
    if (!this.s.startsWith(word, this.i)) this.fail(`expected ${word}`);
    this.i += word.length;
    return word;
  }

  private space(): void {
    for (;;) {
      const c = this.s.charCodeAt(this.i);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.i++;
    }
  }

  private fail(problem: string): never {
    throw new SyntaxError(`canonicalJson: ${problem} at offset ${this.i}`);
  }
}

const NUMBER_CHAR = new Uint8Array(128);
for (const c of '0123456789+-.eE') NUMBER_CHAR[c.charCodeAt(0)] = 1;
