import { defineConfig, type Options } from 'tsup';

/** The build every package shares: ESM + CJS, declarations for both, Node 20. */
export function packageBuild(entry: Options['entry'] = ['src/index.ts'], extra: Options = {}) {
  return defineConfig({ entry, format: ['esm', 'cjs'], dts: true, clean: true, sourcemap: true, target: 'node20', ...extra });
}
