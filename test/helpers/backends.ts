// Runs a describe block once per backend. Native is skipped only when the addon did not load,
// and the reason is printed so a silent skip cannot hide a broken build.
import { beforeEach, describe } from 'vitest';
import * as api from '../../dist/index.js';

export type BackendName = 'native' | 'js';

const info = api.backendInfo();
export const nativeAvailable = info.nativeLoaded;
if (!nativeAvailable) {
  console.warn(`[node-attention tests] native backend skipped: ${info.nativeError}`);
}

export const backendNames: BackendName[] = ['native', 'js'];

/** One describe block per backend; every test in it runs with that backend selected. */
export function forEachBackend(title: string, body: (name: BackendName) => void): void {
  for (const name of backendNames) {
    const block = name === 'native' && !nativeAvailable ? describe.skip : describe;
    block(`${title} [${name}]`, () => {
      beforeEach(() => api.useBackend(name));
      body(name);
    });
  }
}

export { api };
