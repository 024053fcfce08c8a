// The second pass of `npm run test:asan`: the native-heavy test files again, with the scalar
// kernels selected before every test (see test/helpers/force-isa.ts for why).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    setupFiles: ['test/helpers/force-isa.ts'],
    include: [
      'test/fuzz-binding.test.ts', 'test/attention-native.test.ts', 'test/attention.test.ts', 'test/matmul.test.ts',
      'test/linear.test.ts', 'test/kv-cache.test.ts', 'test/mha.test.ts', 'test/properties.test.ts',
    ],
  },
});
