// The numpy peer of `npm run bench -- --peers`: GEMM against numpy's BLAS (OpenBLAS where Debian's
// libopenblas0 is installed) in a python3 child, interleaved with ours in the same run. Both write
// into a preallocated output (numpy `out=`, ours `opts.out`), so the comparison is of the GEMM and
// not of fresh-memory page faults. Both compute the same product; a corner of each output is
// compared, so a wrong or different product cannot be timed.
import { spawnSync } from 'node:child_process';

const SCRIPT = `
import json, sys, time
import numpy as np
n_threads, shapes, reps = int(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
out = []
for m, k, n, seed in shapes:
    # The same inputs as the JS side builds: ((i * prime + seed) % 1000) / 1000, row-major.
    a = (((np.arange(m * k, dtype=np.int64) * 7919 + seed) % 1000) / 1000).astype(np.float32).reshape(m, k)
    b = (((np.arange(k * n, dtype=np.int64) * 104729 + seed) % 1000) / 1000).astype(np.float32).reshape(k, n)
    c = np.empty((m, n), dtype=np.float32)
    np.matmul(a, b, out=c)
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); np.matmul(a, b, out=c); ts.append(time.perf_counter() - t)
    ts.sort()
    out.append({"ms": ts[len(ts) // 2] * 1e3, "checksum": float(c[:4, :4].sum())})
# The BLAS library numpy really loaded (Debian switches it with update-alternatives).
blas = next((line.split()[-1] for line in open("/proc/self/maps") if "libblas" in line or "libopenblas" in line), "?")
print(json.dumps({"numpy": np.__version__, "blas": blas, "results": out}))
`;

/** python3 with numpy (Debian's, /usr/bin first), or null with the reason. */
export function findNumpy() {
  for (const python of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(python, ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { python, version: r.stdout.trim() };
  }
  return null;
}

/** Times [m, k, n] GEMMs in numpy: the median of `reps` calls each, in milliseconds. */
export function numpyGemm(python, threads, shapes, reps) {
  const env = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  const r = spawnSync(python, ['-c', SCRIPT, String(threads), JSON.stringify(shapes), String(reps)], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`numpy peer failed: ${r.stderr.trim().split('\n').pop()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}
