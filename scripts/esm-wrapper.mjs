// Writes dist/index.mjs: an ES module that re-exports the CommonJS build by name. Both entry
// points share one module instance, so backend selection and thread settings are never split
// between an `import` and a `require` of the package.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const dist = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const api = createRequire(import.meta.url)(path.join(dist, 'index.js'));
const names = Object.keys(api).filter((name) => name !== 'default' && name !== '__esModule');
const lines = [
  "import api from './index.js';",
  `export const { ${names.join(', ')} } = api;`,
  'export default api;',
  '',
];
writeFileSync(path.join(dist, 'index.mjs'), lines.join('\n'));
