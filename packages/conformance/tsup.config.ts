import { fileURLToPath } from 'node:url';
import { defineConfig, type Options } from 'tsup';

const shared: Options = {
  entry: {
    index: 'src/index.ts',
    'broken/index': 'src/broken/index.ts',
    containers: 'src/containers.ts',
    services: 'src/services.ts',
  },
  dts: true,
  sourcemap: true,
  target: 'node20',
  // The test runner and core are the user's (peer dependencies): never bundled.
  external: ['vitest', '@mq-drivers/core', 'testcontainers', '@testcontainers/rabbitmq'],
};

const vitestCjs = fileURLToPath(new URL('./src/vitest-cjs.ts', import.meta.url));

export default defineConfig([
  // `pnpm build` empties dist first; neither build cleans (they run in parallel).
  { ...shared, format: ['esm'], clean: false },
  {
    ...shared,
    format: ['cjs'],
    clean: false,
    // vitest refuses require(): the CJS build swaps the registration module for a stub that says so.
    esbuildPlugins: [
      {
        name: 'vitest-cjs-stub',
        setup(build) {
          build.onResolve({ filter: /^\.\/vitest\.js$/ }, () => ({ path: vitestCjs }));
        },
      },
    ],
  },
]);
