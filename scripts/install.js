'use strict';
// npm install hook: keep a prebuilt or previously built binary when it loads on this machine,
// otherwise compile from source with cmake-js (offline: headers come from node-api-headers).
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
  // The package still works without the addon: the JS backend serves every function.
  console.warn('node-attention: native build failed; the pure-JS backend will be used. ' +
    'Install cmake and a C++17 compiler with OpenMP, then run `npm rebuild node-attention`.');
}
