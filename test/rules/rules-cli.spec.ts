import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCaptureCommand } from '../../lib/capture/capture.cli';

describe('nestjs-bemi capture --rules', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bemi-rules-'));
  let stderr: string;
  let spy: jest.SpyInstance;

  beforeEach(() => {
    stderr = '';
    spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr += String(chunk);
      return true;
    });
  });
  afterEach(() => spy.mockRestore());

  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('refuses a rules file that is not JSON, before connecting anywhere', async () => {
    const path = file('broken.json', '{ tables: ');
    expect(await runCaptureCommand(['--source', 'postgres://nowhere.invalid/db', '--rules', path])).toBe(2);
    expect(stderr).toContain(`--rules ${path}: cannot read it as JSON`);
  });

  it('refuses wrong rules, naming the option and the fix', async () => {
    const path = file('wrong.json', JSON.stringify({ tables: { users: { redact: { password: 'hmac' } } } }));
    const before = process.env.BEMI_HMAC_KEY;
    delete process.env.BEMI_HMAC_KEY;
    try {
      expect(await runCaptureCommand(['--source', 'postgres://nowhere.invalid/db', '--rules', path])).toBe(2);
    } finally {
      if (before !== undefined) process.env.BEMI_HMAC_KEY = before;
    }
    expect(stderr).toMatch(/"rules.hmacKey" is required: column "password" of users is redacted with "hmac"\. Set rules.hmacKey/);
  });
});
