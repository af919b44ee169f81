import { posix } from 'node:path';
import type * as TS from 'typescript';
import type { ReadProjectFile } from '../migration/migrations-path';
import type { TypeScriptApi } from '../migration/typescript';

export const BEMI_PACKAGE_NAME = 'nestjs-bemi';
const REGISTRATION = 'BemiModule.forRoot()';

export interface RootModuleEdit {
  /** The new source text (the same text when nothing changed). */
  content: string;
  changed: boolean;
  /** One sentence for the user: what was done, or why nothing was. */
  message: string;
}

/**
 * The file of the app's root module: the module `<sourceRoot>/<entryFile>.ts` passes to
 * `NestFactory.create*()`, resolved through its import; else `<sourceRoot>/app.module.ts` if it
 * exists; else undefined.
 */
export function findRootModuleFile(
  ts: TypeScriptApi,
  read: ReadProjectFile,
  options: { sourceRoot?: string; entryFile?: string } = {},
): string | undefined {
  const sourceRoot = trimDir(options.sourceRoot ?? 'src');
  const mainFile = posix.join(sourceRoot, `${options.entryFile ?? 'main'}.ts`);
  const main = read(mainFile);
  if (main !== undefined) {
    const sf = ts.createSourceFile(mainFile, main, ts.ScriptTarget.Latest, true);
    let moduleName: string | undefined;
    const visit = (node: TS.Node): void => {
      if (moduleName) return;
      if (
        ts.isCallExpression(node) &&
        ts.isPropertyAccessExpression(node.expression) &&
        node.expression.expression.getText(sf) === 'NestFactory' &&
        node.arguments.length > 0 &&
        ts.isIdentifier(node.arguments[0])
      ) {
        moduleName = node.arguments[0].text;
        return;
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
    const specifier = moduleName && importSpecifierOf(ts, sf, moduleName);
    if (specifier && specifier.startsWith('.')) {
      const base = posix.join(posix.dirname(mainFile), specifier);
      for (const file of [`${base}.ts`, `${base}/index.ts`]) if (read(file) !== undefined) return file;
    }
  }
  const fallback = posix.join(sourceRoot, 'app.module.ts');
  return read(fallback) !== undefined ? fallback : undefined;
}

/**
 * Adds `BemiModule.forRoot()` to the `imports` of the first `@Module({...})` class of a file, and
 * `import { BemiModule } from 'nestjs-bemi'`, by editing the text at positions found in its syntax
 * tree (the rest of the file keeps its formatting). Idempotent: when the module's imports already
 * mention BemiModule, nothing changes.
 */
export function addBemiModuleToSource(ts: TypeScriptApi, source: string, fileName: string): RootModuleEdit {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const metadata = findModuleMetadata(ts, sf);
  const manual = `add ${REGISTRATION} to the imports of your root module by hand`;
  if (!metadata) {
    return { content: source, changed: false, message: `${fileName} has no @Module({ ... }) class: ${manual}.` };
  }
  const edits: Array<{ pos: number; text: string }> = [];
  const importsProp = metadata.properties.find(
    (p): p is TS.PropertyAssignment => ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) && p.name.text === 'imports',
  );
  if (importsProp) {
    if (!ts.isArrayLiteralExpression(importsProp.initializer)) {
      if (/\bBemiModule\b/.test(importsProp.initializer.getText(sf))) return unchanged(source, fileName);
      return { content: source, changed: false, message: `the imports of the module in ${fileName} are not an array literal: ${manual}.` };
    }
    const array = importsProp.initializer;
    if (array.elements.some((e) => /\bBemiModule\b/.test(e.getText(sf)))) return unchanged(source, fileName);
    edits.push(appendToArray(sf, source, array));
  } else if (metadata.properties.some((p) => !ts.isPropertyAssignment(p) && !ts.isShorthandPropertyAssignment(p))) {
    return { content: source, changed: false, message: `the @Module() metadata in ${fileName} uses spreads or methods: ${manual}.` };
  } else if (metadata.properties.some((p) => ts.isShorthandPropertyAssignment(p) && p.name.text === 'imports')) {
    return { content: source, changed: false, message: `the module in ${fileName} takes its imports from a variable: ${manual}.` };
  } else if (metadata.properties.length === 0) {
    // `@Module({})` becomes `@Module({ imports: [BemiModule.forRoot()] })`
    edits.push({ pos: metadata.getStart(sf) + 1, text: ` imports: [${REGISTRATION}] ` });
  } else {
    const first = metadata.properties[0];
    const firstStart = first.getStart(sf);
    const multiline = source.slice(metadata.getStart(sf), firstStart).includes('\n');
    edits.push({ pos: firstStart, text: `imports: [${REGISTRATION}],${multiline ? `\n${indentationAt(source, firstStart)}` : ' '}` });
  }
  edits.push(importDeclarationEdit(ts, sf, source));

  let content = source;
  for (const edit of edits.sort((a, b) => b.pos - a.pos)) content = content.slice(0, edit.pos) + edit.text + content.slice(edit.pos);
  return { content, changed: true, message: `added ${REGISTRATION} to the imports of ${fileName}.` };
}

function unchanged(source: string, fileName: string): RootModuleEdit {
  return { content: source, changed: false, message: `${fileName} already imports BemiModule: left unchanged.` };
}

function findModuleMetadata(ts: TypeScriptApi, sf: TS.SourceFile): TS.ObjectLiteralExpression | undefined {
  for (const statement of sf.statements) {
    if (!ts.isClassDeclaration(statement)) continue;
    const decorators = (ts.canHaveDecorators(statement) ? ts.getDecorators(statement) : undefined) ?? [];
    for (const decorator of decorators) {
      const call = decorator.expression;
      if (ts.isCallExpression(call) && ts.isIdentifier(call.expression) && call.expression.text === 'Module') {
        const [arg] = call.arguments;
        if (arg && ts.isObjectLiteralExpression(arg)) return arg;
      }
    }
  }
  return undefined;
}

function appendToArray(sf: TS.SourceFile, source: string, array: TS.ArrayLiteralExpression): { pos: number; text: string } {
  const elements = array.elements;
  if (elements.length === 0) return { pos: array.getStart(sf) + 1, text: REGISTRATION };
  const last = elements[elements.length - 1];
  const multiline = source.slice(array.getStart(sf), elements[0].getStart(sf)).includes('\n');
  if (elements.hasTrailingComma) {
    const comma = source.indexOf(',', last.end);
    return multiline
      ? { pos: comma + 1, text: `\n${indentationAt(source, last.getStart(sf))}${REGISTRATION},` }
      : { pos: comma + 1, text: ` ${REGISTRATION},` };
  }
  return multiline ? { pos: last.end, text: `,\n${indentationAt(source, last.getStart(sf))}${REGISTRATION}` } : { pos: last.end, text: `, ${REGISTRATION}` };
}

function importDeclarationEdit(ts: TypeScriptApi, sf: TS.SourceFile, source: string): { pos: number; text: string } {
  const imports = sf.statements.filter(ts.isImportDeclaration);
  const existing = imports.find(
    (d) => ts.isStringLiteral(d.moduleSpecifier) && d.moduleSpecifier.text === BEMI_PACKAGE_NAME && !d.importClause?.isTypeOnly,
  );
  const named = existing?.importClause?.namedBindings;
  if (named && ts.isNamedImports(named)) {
    if (named.elements.some((e) => e.name.text === 'BemiModule')) return { pos: 0, text: '' };
    const lastSpecifier = named.elements[named.elements.length - 1];
    return lastSpecifier ? { pos: lastSpecifier.end, text: ', BemiModule' } : { pos: named.getStart(sf) + 1, text: ' BemiModule ' };
  }
  const quote = imports.length && source.charAt(imports[0].moduleSpecifier.getStart(sf)) === '"' ? '"' : "'";
  const semicolon = imports.length && !source.slice(imports[0].getStart(sf), imports[0].end).trimEnd().endsWith(';') ? '' : ';';
  const declaration = `import { BemiModule } from ${quote}${BEMI_PACKAGE_NAME}${quote}${semicolon}`;
  const after = imports[imports.length - 1];
  return after ? { pos: after.end, text: `\n${declaration}` } : { pos: 0, text: `${declaration}\n` };
}

function importSpecifierOf(ts: TypeScriptApi, sf: TS.SourceFile, name: string): string | undefined {
  for (const statement of sf.statements) {
    if (!ts.isImportDeclaration(statement) || !ts.isStringLiteral(statement.moduleSpecifier)) continue;
    const bindings = statement.importClause?.namedBindings;
    if (bindings && ts.isNamedImports(bindings) && bindings.elements.some((e) => e.name.text === name)) return statement.moduleSpecifier.text;
  }
  return undefined;
}

function indentationAt(source: string, pos: number): string {
  const lineStart = source.lastIndexOf('\n', pos - 1) + 1;
  return /^[ \t]*/.exec(source.slice(lineStart, pos))?.[0] ?? '';
}

function trimDir(dir: string): string {
  return posix.normalize(dir.replace(/\\/g, '/')).replace(/^\.\/+/, '').replace(/\/+$/, '') || '.';
}

export interface BemiRegistration {
  /** The file calls `BemiModule.forRoot(...)` or `BemiModule.forRootAsync(...)`. */
  registered: boolean;
  /**
   * Whether the options turn the in-app capture worker on: true for a `capture` property of an
   * object literal given to forRoot(), false when forRoot() has none, undefined when the syntax
   * does not say (options from a variable, a spread, forRootAsync()).
   */
  capture: boolean | undefined;
}

/** What the `BemiModule` registration of a module file says about capture, read from its syntax tree. */
export function readBemiRegistration(ts: TypeScriptApi, source: string, fileName: string): BemiRegistration {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  let found: BemiRegistration = { registered: false, capture: false };
  const visit = (node: TS.Node): void => {
    if (found.capture === true) return;
    if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      ts.isIdentifier(node.expression.expression) &&
      node.expression.expression.text === 'BemiModule' &&
      (node.expression.name.text === 'forRoot' || node.expression.name.text === 'forRootAsync')
    ) {
      const capture = node.expression.name.text === 'forRoot' ? captureInOptions(ts, node.arguments[0]) : undefined;
      // Several registrations (e.g. per environment): one that captures, else one that may, wins.
      if (!found.registered || capture === true || (capture === undefined && found.capture === false)) found = { registered: true, capture };
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found.registered ? found : { registered: false, capture: false };
}

function captureInOptions(ts: TypeScriptApi, options: TS.Expression | undefined): boolean | undefined {
  if (options === undefined) return false;
  if (!ts.isObjectLiteralExpression(options)) return undefined;
  const property = options.properties.find((p) => p.name !== undefined && propertyName(ts, p.name) === 'capture');
  if (property) {
    // `capture: undefined` (or null/false, which validation would reject) does not start the worker.
    if (!ts.isPropertyAssignment(property)) return true;
    const value = property.initializer;
    const off = value.kind === ts.SyntaxKind.NullKeyword || value.kind === ts.SyntaxKind.FalseKeyword || (ts.isIdentifier(value) && value.text === 'undefined');
    return !off;
  }
  return options.properties.some(ts.isSpreadAssignment) ? undefined : false;
}

function propertyName(ts: TypeScriptApi, name: TS.PropertyName): string | undefined {
  return ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNoSubstitutionTemplateLiteral(name) ? name.text : undefined;
}

/** Whether a file (the app's main.ts) calls `<something>.enableShutdownHooks(...)`. */
export function callsEnableShutdownHooks(ts: TypeScriptApi, source: string, fileName: string): boolean {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  let found = false;
  const visit = (node: TS.Node): void => {
    if (found) return;
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression) && node.expression.name.text === 'enableShutdownHooks') {
      found = true;
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}
