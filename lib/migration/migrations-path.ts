import { posix } from 'node:path';
import type * as TS from 'typescript';
import { loadTypeScript, type TypeScriptApi } from './typescript';

/** Reads a file of the app by its path relative to the app root (posix); undefined if absent. */
export type ReadProjectFile = (path: string) => string | undefined;

export interface MigrationsDirectory {
  /** Directory relative to the app root, posix separators, no leading `./`. */
  path: string;
  /** The file whose MikroORM config gave the path, or undefined for the default. */
  foundIn?: string;
}

/**
 * Where MikroORM configs usually live (MikroORM's own defaults are ./src/mikro-orm.config.ts and
 * ./mikro-orm.config.ts), after the ones package.json names in `mikro-orm.configPaths`; last, the
 * root module, for a config inlined in `MikroOrmModule.forRoot({...})`.
 */
export function mikroOrmConfigCandidates(sourceRoot = 'src'): string[] {
  const root = normalize(sourceRoot) || 'src';
  return unique([
    `${root}/mikro-orm.config.ts`,
    'src/mikro-orm.config.ts',
    'mikro-orm.config.ts',
    `${root}/config/mikro-orm.config.ts`,
    `${root}/mikro-orm.config.js`,
    'mikro-orm.config.js',
    `${root}/app.module.ts`,
  ]);
}

/**
 * The directory a new migration belongs in: the `migrations.pathTs` (else `migrations.path`) of
 * the app's MikroORM config when one of the usual config files sets it as a string or as
 * `join(__dirname, '...')` / `resolve(process.cwd(), '...')`; else `<sourceRoot>/migrations`.
 */
export function resolveMigrationsDirectory(
  read: ReadProjectFile,
  options: { sourceRoot?: string; extraCandidates?: string[]; ts?: TypeScriptApi } = {},
): MigrationsDirectory {
  const sourceRoot = normalize(options.sourceRoot ?? 'src') || 'src';
  const ts = options.ts ?? loadTypeScript();
  const candidates = unique([...configPathsFromPackageJson(read), ...mikroOrmConfigCandidates(sourceRoot), ...(options.extraCandidates ?? [])]);
  if (ts) {
    for (const file of candidates) {
      const source = read(file);
      if (source === undefined) continue;
      const found = findMigrationsPathInSource(ts, source, file);
      if (found !== undefined) return { path: found, foundIn: file };
    }
  }
  return { path: `${sourceRoot}/migrations` };
}

/** `migrations.pathTs` or `migrations.path` of a MikroORM config object in a source file, relative to the app root. */
export function findMigrationsPathInSource(ts: TypeScriptApi, source: string, fileName: string): string | undefined {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const fileDir = posix.dirname(normalize(fileName));
  let result: string | undefined;
  const visit = (node: TS.Node): void => {
    if (result !== undefined) return;
    if (ts.isPropertyAssignment(node) && propertyName(ts, node.name) === 'migrations' && ts.isObjectLiteralExpression(node.initializer)) {
      const byName = new Map<string, TS.Expression>();
      for (const p of node.initializer.properties) {
        if (ts.isPropertyAssignment(p)) byName.set(propertyName(ts, p.name) ?? '', p.initializer);
      }
      for (const key of ['pathTs', 'path']) {
        const expr = byName.get(key);
        const value = expr && evaluatePath(ts, expr, fileDir);
        if (value !== undefined) {
          result = value;
          return;
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return result;
}

function evaluatePath(ts: TypeScriptApi, expr: TS.Expression, fileDir: string): string | undefined {
  const literal = stringValue(ts, expr);
  if (literal !== undefined) return inProject(literal);
  // join(__dirname, 'a', 'b'), path.resolve(process.cwd(), 'a'), ...
  if (!ts.isCallExpression(expr)) return undefined;
  const callee = expr.expression;
  const fnName = ts.isIdentifier(callee) ? callee.text : ts.isPropertyAccessExpression(callee) ? callee.name.text : undefined;
  if (fnName !== 'join' && fnName !== 'resolve') return undefined;
  const parts: string[] = [];
  for (const [i, arg] of expr.arguments.entries()) {
    if (i === 0 && ts.isIdentifier(arg) && arg.text === '__dirname') parts.push(fileDir);
    else if (i === 0 && ts.isCallExpression(arg) && arg.getText() === 'process.cwd()') parts.push('.');
    else {
      const value = stringValue(ts, arg);
      if (value === undefined) return undefined;
      parts.push(value);
    }
  }
  return parts.length ? inProject(posix.join(...parts)) : undefined;
}

function stringValue(ts: TypeScriptApi, expr: TS.Expression): string | undefined {
  return ts.isStringLiteral(expr) || ts.isNoSubstitutionTemplateLiteral(expr) ? expr.text : undefined;
}

function propertyName(ts: TypeScriptApi, name: TS.PropertyName): string | undefined {
  return ts.isIdentifier(name) || ts.isStringLiteral(name) ? name.text : undefined;
}

/** A path relative to the app root, or undefined when it is absolute or leaves the app. */
function inProject(path: string): string | undefined {
  if (path.startsWith('/') || /^[A-Za-z]:[\\/]/.test(path)) return undefined;
  const normalized = normalize(path);
  if (normalized === '..' || normalized.startsWith('../')) return undefined;
  return normalized || '.';
}

function normalize(path: string): string {
  const n = posix.normalize(path.replace(/\\/g, '/')).replace(/^\.\/+/, '').replace(/\/+$/, '');
  return n === '.' ? '' : n;
}

function configPathsFromPackageJson(read: ReadProjectFile): string[] {
  const text = read('package.json');
  if (!text) return [];
  try {
    const paths = JSON.parse(text)?.['mikro-orm']?.configPaths;
    return Array.isArray(paths) ? paths.filter((p): p is string => typeof p === 'string').map(normalize).filter((p) => !!inProject(p)) : [];
  } catch {
    return [];
  }
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
