// The timing guarantees (test/*.timing.ts): run by `npm test` after the main suite, one file at a
// time and alone, because a parallel test file on the same cores would measure itself instead.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.timing.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
  },
});
