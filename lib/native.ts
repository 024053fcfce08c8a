// Finds and loads the native addon: an explicit NODE_ATTENTION_ADDON path, then a prebuild
// matching this platform/ABI, then a local build. Every failure is kept so backendInfo() and
// the NODE_ATTENTION_BACKEND=native error can say exactly why native is not in use.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The raw addon. Its functions re-check sizes but expect the validated plans from lib/validate*.ts. */
export interface Binding {
  info(): { isa: string; isas: string[]; threads: number };
  setNumThreads(n: number): void;
  selectIsa(isa: string): boolean;
  dot(a: Float32Array, b: Float32Array): number;
  matmul(
    a: Float32Array, b: Float32Array, bias: Float32Array | null, out: Float32Array,
    m: number, k: number, n: number, transA: boolean, transB: boolean, batch?: Float64Array,
  ): void;
  [name: string]: unknown;
}

export interface LoadResult {
  binding: Binding | null;
  binaryPath: string | null;
  error: string | null;
}

const root = path.join(__dirname, '..');

function prebuildCandidate(): string | null {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  let files: string[];
  try {
    files = fs.readdirSync(dir);
  } catch {
    return null;
  }
  // node-gyp-build's own tag matching (napi/abi, libc, runtime), best match first.
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

function candidates(): string[] {
  const explicit = process.env.NODE_ATTENTION_ADDON;
  if (explicit) return [path.resolve(explicit)];
  const list: string[] = [];
  const prebuild = prebuildCandidate();
  if (prebuild) list.push(prebuild);
  list.push(path.join(root, 'build', 'Release', 'node_attention.node'));
  return list;
}

/**
 * OpenMP threads that spin after a parallel region steal the core from the event loop, the
 * libuv pool and the next region's own team: on a busy 2-core machine a decode step ran 4-10x
 * slower with spinning than with sleeping workers. libgomp reads this once, when the addon
 * pulls it in, so it is set before the first load; a user's own setting wins.
 */
function preferSleepingOpenMPThreads(): void {
  if (process.env.OMP_WAIT_POLICY === undefined && process.env.GOMP_SPINCOUNT === undefined) {
    process.env.OMP_WAIT_POLICY = 'PASSIVE';
  }
}

export function loadNative(): LoadResult {
  preferSleepingOpenMPThreads();
  const failures: string[] = [];
  for (const file of candidates()) {
    if (!fs.existsSync(file)) {
      failures.push(`${path.relative(root, file) || file}: not found`);
      continue;
    }
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const binding = require(file) as Binding;
      binding.info();
      return { binding, binaryPath: file, error: null };
    } catch (err) {
      failures.push(`${path.relative(root, file) || file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const error = [
    'The node-attention native addon could not be loaded, so the pure-JS backend is in use.',
    ...failures.map((line) => `  - ${line}`),
    'Possible solutions:',
    '  - Build it from source: `npm rebuild node-attention` (needs cmake >= 3.15 and a C++17 compiler with OpenMP)',
    '  - In a clone of the repository: `npm run build:native`',
    `  - Check that Node-API ${8} is supported (Node >= 12.22 / 14.17 / 15.12) and the binary matches ${process.platform}-${process.arch}`,
  ].join('\n');
  return { binding: null, binaryPath: null, error };
}
