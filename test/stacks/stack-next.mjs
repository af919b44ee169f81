// `npm run test:stack-next [-- <jest args>]`: the suites on today's stack (test/stacks/stacks.json
// "next": Node 22 from the npm `node` package, NestJS 12, MikroORM 7, nestjs-cls 7), next to the
// lockfile's stack that `npm test` runs. Nothing of it is in the lockfile: the tracked files are
// copied into a work directory (default: <tmp>/nestjs-bemi-stack-next, or BEMI_STACK_DIR) whose
// package.json is ours with that stack's versions, installed there on that Node. Then typecheck,
// build and Jest run there, on that Node, with BEMI_STACK=next.
//   --install-only   install and stop            --no-typecheck   skip tsc --noEmit
//   --script <name>  run `npm run <name> -- <args>` there instead of Jest (e.g. bench, sample:demo);
//                    bench results come back as bench/results/latest[-quick]-next.{json,md}
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const stacks = JSON.parse(readFileSync(join(root, 'test', 'stacks', 'stacks.json'), 'utf8'));
const stack = stacks.next;
const work = process.env.BEMI_STACK_DIR ?? join(tmpdir(), 'nestjs-bemi-stack-next');
const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.indexOf(name);
  if (i === -1) return false;
  args.splice(i, 1);
  return true;
};
const installOnly = flag('--install-only');
const typecheck = !flag('--no-typecheck');
const scriptAt = args.indexOf('--script');
const script = scriptAt === -1 ? null : args.splice(scriptAt, 2)[1];

function run(cmd, cmdArgs, options = {}) {
  const result = spawnSync(cmd, cmdArgs, { stdio: 'inherit', ...options });
  if (result.status !== 0) {
    console.error(`\n${cmd} ${cmdArgs.join(' ')} failed (${result.status ?? result.signal}) in ${options.cwd ?? process.cwd()}`);
    process.exit(result.status || 1);
  }
}

// 1. Node from the npm `node` package (its binary ships inside the package), once per version.
function ensureNode(version) {
  const dir = join(work, `node-${version}`);
  const bin = join(dir, 'node_modules', 'node', 'bin', 'node');
  const installed = () => (existsSync(bin) ? spawnSync(bin, ['-v'], { encoding: 'utf8' }).stdout.trim() : '');
  if (installed() !== `v${version}`) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `node-${version}`, private: true, allowScripts: { node: true } }, null, 2));
    run('npm', ['install', '--no-audit', '--no-fund', '--no-save', '-E', `node@${version}`], { cwd: dir });
    if (installed() !== `v${version}`) {
      console.error(`The npm package node@${version} did not install a working ${bin}.`);
      process.exit(1);
    }
  }
  return bin;
}
const nodeBin = ensureNode(stack.node);
// Other Node versions the consumer-app e2e also runs the packed package on (BEMI_ALSO_NODE).
const alsoNode = (stack.alsoNode ?? []).map(ensureNode);
const env = { ...process.env, PATH: `${dirname(nodeBin)}:${process.env.PATH}`, BEMI_STACK: 'next', BEMI_ALSO_NODE: alsoNode.join(':') };
delete env.npm_config_prefix;

// 2. The tracked files (and new, not ignored ones), fresh; node_modules is kept between runs.
const repo = join(work, 'repo');
mkdirSync(repo, { recursive: true });
for (const entry of ['lib', 'test', 'sample', 'bench', 'schematics', 'docs', '.ci', '.sample-data', '.sample-build', 'dist']) rmSync(join(repo, entry), { recursive: true, force: true });
const files = spawnSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root, encoding: 'utf8' });
if (files.status !== 0) throw new Error(`git ls-files failed: ${files.stderr}`);
for (const file of files.stdout.split('\0').filter(Boolean)) {
  if (file === 'package-lock.json' || !existsSync(join(root, file))) continue;
  mkdirSync(dirname(join(repo, file)), { recursive: true });
  cpSync(join(root, file), join(repo, file));
}

// 3. package.json: ours, with the stack's versions of what the app and the tests use.
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
pkg.devDependencies = { ...pkg.devDependencies, ...stack.dev };
writeFileSync(join(repo, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
// Reinstall when any dependency list changes (the lockfile stack's package.json is the base).
const wanted = JSON.stringify({ dependencies: pkg.dependencies, devDependencies: pkg.devDependencies, peerDependencies: pkg.peerDependencies });
const stamp = join(repo, 'node_modules', '.stack-next-installed');
if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== wanted) {
  rmSync(join(repo, 'package-lock.json'), { force: true });
  // A plain install: no --legacy-peer-deps, so our peer ranges must admit this stack.
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: repo, env });
  writeFileSync(stamp, wanted);
}
if (installOnly) process.exit(0);

// 4. The same checks as on the lockfile's stack, or the script asked for.
if (script) {
  run('npm', ['run', script, '--', ...args], { cwd: repo, env });
  for (const name of ['latest-next', 'latest-quick-next']) {
    for (const ext of ['json', 'md']) {
      const file = join(repo, 'bench', 'results', `${name}.${ext}`);
      if (existsSync(file)) cpSync(file, join(root, 'bench', 'results', `${name}.${ext}`));
    }
  }
  process.exit(0);
}
if (typecheck) run(nodeBin, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json', '--noEmit'], { cwd: repo, env });
run('npm', ['run', 'build'], { cwd: repo, env });
// No arguments: every suite, as npm test runs them.
run(nodeBin, [...(stack.nodeFlags ?? []), join(repo, 'node_modules', 'jest', 'bin', 'jest.js'), ...args], { cwd: repo, env });
