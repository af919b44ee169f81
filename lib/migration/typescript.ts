import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as TS from 'typescript';

export type TypeScriptApi = typeof TS;

/**
 * The TypeScript compiler API of the app being edited, for reading and editing its source files
 * by syntax tree. nestjs-bemi does not depend on TypeScript: every NestJS app has it, so it is
 * loaded from the app (the working directory) first, then from wherever nestjs-bemi is installed.
 * Returns undefined when neither has it; callers then explain the manual step.
 */
export function loadTypeScript(cwd: string = process.cwd()): TypeScriptApi | undefined {
  for (const from of [join(cwd, 'package.json'), __filename]) {
    try {
      return createRequire(from)('typescript') as TypeScriptApi;
    } catch {
      // try the next location
    }
  }
  return undefined;
}
