'use strict';
// npm install hook: keep a prebuilt or previously built binary when it loads on this machine,
// otherwise compile from source with cmake-js (offline: headers come from node-api-headers).
//
// Exit status when the source build fails: 0, so that installing a project that depends on this
// package still succeeds (every function works on the JS backend). npm 11 hides the output of
// install scripts that succeed, so the message below is a courtesy for `--foreground-scripts`;
// the user is told for sure at run time, by one NODE_ATTENTION_JS_FALLBACK warning on the first
// call. Set NODE_ATTENTION_REQUIRE_NATIVE=1 to make a failed build fail the install instead.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');

function loadsHere() {
  const probe = spawnSync(process.execPath, ['-e', `require('node-gyp-build')(${JSON.stringify(root)})`], {
    stdio: 'ignore',
  });
  return probe.status === 0;
}

if (process.env.NODE_ATTENTION_BUILD_FROM_SOURCE !== '1' && loadsHere()) {
  console.log('node-attention: using the existing native binary');
  process.exit(0);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const result = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  const required = process.env.NODE_ATTENTION_REQUIRE_NATIVE === '1';
  console.error([
    '',
    '*** node-attention: the native addon could not be built from source. ***',
    required
      ? 'NODE_ATTENTION_REQUIRE_NATIVE=1 is set, so the install fails.'
      : 'The package still works: every function falls back to the pure-JS backend (5-50x slower).',
    'To build it: install cmake >= 3.15 and a C++17 compiler (g++ or clang; OpenMP optional),',
    'then run `npm rebuild node-attention`.',
    '',
  ].join('\n'));
  process.exit(required ? 1 : 0);
}
