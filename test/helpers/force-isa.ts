// Setup file for the second pass of `npm run test:asan` (scripts/vitest-scalar.config.mjs): selects
// the kernel set named by NODE_ATTENTION_TEST_ISA (default scalar) before every test. The scalar
// kernels are plain C++ whose every load and store AddressSanitizer instruments, whereas the AVX2
// kernels' masked loads and stores (_mm256_maskload_ps / _mm256_maskstore_ps) are compiler builtins
// it cannot see; the drivers' index math is shared, so this pass checks it with full coverage.
import { beforeEach } from 'vitest';
import * as api from '../../dist/index.js';

const isa = process.env.NODE_ATTENTION_TEST_ISA ?? 'scalar';
if (api.backendInfo().nativeLoaded && !api.setSimd(isa)) throw new Error(`this CPU cannot run the ${isa} kernels`);
beforeEach(() => {
  api.setSimd(isa);
});
