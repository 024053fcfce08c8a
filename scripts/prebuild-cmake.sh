#!/usr/bin/env sh
# prebuildify calls this in place of node-gyp ("rebuild" and its flags are ignored): build with
# cmake-js into build/Release, where prebuildify collects the .node file from.
set -e
cd "$(dirname "$0")/.."
exec node node_modules/cmake-js/bin/cmake-js rebuild
