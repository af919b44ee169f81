import type { CaptureLogger } from '../../lib/options/capture-options';
import type { RetentionLogger } from '../../lib/retention/prune-changes';

export type LogLevel = 'log' | 'warn' | 'error';

/** A logger (capture worker, pruning) that keeps its lines for assertions instead of printing them. */
export class RecordingLogger implements CaptureLogger, RetentionLogger {
  readonly lines: Array<{ level: LogLevel; message: string }> = [];
  log(message: string): void {
    this.lines.push({ level: 'log', message });
  }
  warn(message: string): void {
    this.lines.push({ level: 'warn', message });
  }
  error(message: string): void {
    this.lines.push({ level: 'error', message });
  }
  /** The messages of one level (all without one), in order. */
  messages(level?: LogLevel): string[] {
    return this.lines.filter((l) => !level || l.level === level).map((l) => l.message);
  }
  text(level?: LogLevel): string {
    return this.messages(level).join('\n');
  }
}
