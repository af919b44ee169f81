import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One of the stacks in stacks.json: what a user's app has (`app`) and its tooling (`tools`). */
export interface Stack {
  name: 'current' | 'next';
  /** Node version the stack runs on; null = the Node that runs `npm test`. */
  node: string | null;
  app: Record<string, string>;
  tools: Record<string, string>;
}

/**
 * The stack this run tests: `BEMI_STACK=next` is set by `npm run test:stack-next` (which installs
 * that stack and runs the suites on its Node); otherwise the lockfile's stack.
 */
export function currentStack(): Stack {
  const name = process.env.BEMI_STACK === 'next' ? 'next' : 'current';
  const stacks = JSON.parse(readFileSync(join(__dirname, 'stacks.json'), 'utf8')) as Record<string, Omit<Stack, 'name'>>;
  return { name, ...stacks[name] };
}

/** Major version of a package as the running code resolves it (the stack actually installed). */
export function installedMajor(pkg: string): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return Number((require(`${pkg}/package.json`) as { version: string }).version.split('.')[0]);
}
