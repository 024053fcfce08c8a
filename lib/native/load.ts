// Finds and loads the native addon, once: an explicit NODE_ATTENTION_ADDON path, then a prebuild
// for this platform/ABI (node-gyp-build's tag matching), then a local build wherever the
// `bindings` package looks (build/Release, build/Debug, out/, ...). Every failure is kept so
// backendInfo() and the NODE_ATTENTION_BACKEND=native error can say exactly why native is not in use.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Binding } from './binding';

export interface LoadResult {
  binding: Binding | null;
  binaryPath: string | null;
  error: string | null;
}

const root = path.join(__dirname, '..', '..');
const ADDON = 'node_attention.node';

function relative(file: string): string {
  return path.relative(root, file) || file;
}

function prebuildCandidate(): string | null {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  let files: string[];
  try {
    files = fs.readdirSync(dir);
  } catch {
    return null;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const gypBuild = require('node-gyp-build') as {
    parseTags(file: string): { file: string } | undefined;
    matchTags(runtime: string, abi: string): (tags: unknown) => boolean;
    compareTags(runtime: string): (a: unknown, b: unknown) => number;
  };
  const winner = files
    .map((file) => gypBuild.parseTags(file))
    .filter((tags): tags is { file: string } => !!tags && gypBuild.matchTags('node', process.versions.modules)(tags))
    .sort(gypBuild.compareTags('node'))[0];
  return winner ? path.join(dir, winner.file) : null;
}

/** The first local build `bindings` finds, or null with every place it looked noted in `failures`. */
function localBuild(failures: string[]): string | null {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const bindings = require('bindings') as (opts: { bindings: string; module_root: string; path: true }) => string;
  try {
    return bindings({ bindings: ADDON, module_root: root, path: true });
  } catch (err) {
    const tries = (err as { tries?: string[] }).tries;
    if (tries) for (const file of tries) failures.push(`${relative(file)}: not found`);
    else failures.push(`local build: ${(err as Error).message.split('\n')[0]}`);
    return null;
  }
}

/**
 * How long libgomp's workers spin after a parallel region before they sleep. Spinning without end
 * steals the core from the event loop, the libuv pool and the next region's own team (on a busy
 * 2-core machine a decode step ran 4-10x slower than with sleeping workers), but sleeping at once
 * makes every region of a decode step (five per layer) pay a futex wake-up: GPT-2 small in F16
 * took 8.0 ms a step with sleeping workers and 6.1 ms with a spin of 100000 iterations (about
 * 1.7 ms of CPU after a call on a 2-core Zen VM). libgomp reads this once, when the addon pulls it in, so it is set before the first load;
 * a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
 */
function boundOpenMPSpinning(): void {
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.GOMP_SPINCOUNT = '100000';
  }
}

function tryLoad(file: string, failures: string[]): Binding | null {
  if (!fs.existsSync(file)) {
    failures.push(`${relative(file)}: not found`);
    return null;
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const binding = require(file) as Binding;
    binding.info();
    return binding;
  } catch (err) {
    failures.push(`${relative(file)}: ${(err as Error).message.split('\n')[0]}`);
    return null;
  }
}

function load(): LoadResult {
  boundOpenMPSpinning();
  const failures: string[] = [];
  const explicit = process.env.NODE_ATTENTION_ADDON;
  const candidates = explicit ? [path.resolve(explicit)] : [prebuildCandidate()];
  for (const file of candidates) {
    if (file === null) continue;
    const binding = tryLoad(file, failures);
    if (binding) return { binding, binaryPath: file, error: null };
  }
  if (!explicit) {
    if (!candidates[0]) failures.unshift(`prebuilds/${process.platform}-${process.arch}: no prebuilt binary for this platform and Node ABI`);
    const file = localBuild(failures);
    const binding = file ? tryLoad(file, failures) : null;
    if (binding && file) return { binding, binaryPath: file, error: null };
  }
  const error = [
    'The node-attention native addon could not be loaded, so the pure-JS backend is in use.',
    ...failures.map((line) => `  - ${line}`),
    'Possible solutions:',
    '  - Build it from source: `npm rebuild node-attention` (needs cmake >= 3.15 and a C++17 compiler; OpenMP optional)',
    '  - In a clone of the repository: `npm run build:native`',
    `  - Check that the binary was built for ${process.platform}-${process.arch} and Node-API 8 (Node >= 20)`,
  ].join('\n');
  return { binding: null, binaryPath: null, error };
}

/** The addon, loaded once on first import of the library. */
export const loaded: LoadResult = load();
