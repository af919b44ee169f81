/**
 * The base of every error nestjs-bemi throws on purpose: `instanceof BemiError` catches them all.
 * `fix` says what to do about it in one sentence (also the end of `message`), so a log line
 * alone is actionable.
 */
export class BemiError extends Error {
  readonly fix: string;

  constructor(message: string, fix = '') {
    super(fix ? `${message}${/[.!?]$/.test(message) ? '' : '.'} ${fix}` : message);
    this.name = new.target.name;
    this.fix = fix;
  }
}
