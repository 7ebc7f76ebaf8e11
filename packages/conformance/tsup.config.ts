import { defineConfig, type Options } from 'tsup';

const entry = {
  index: 'src/index.ts',
  'broken/index': 'src/broken/index.ts',
  containers: 'src/containers.ts',
  services: 'src/services.ts',
};

const shared: Options = {
  dts: true,
  sourcemap: true,
  target: 'node20',
  // The test runner and core are the user's (peer dependencies): never bundled.
  external: ['vitest', '@mq-drivers/core', 'testcontainers', '@testcontainers/rabbitmq'],
};

export default defineConfig([
  // `pnpm build` empties dist first; neither build cleans (they run in parallel).
  // `./vitest` is ESM only: vitest cannot be loaded with require(), so it has no CommonJS build.
  { ...shared, entry: { ...entry, vitest: 'src/vitest.ts' }, format: ['esm'], clean: false },
  { ...shared, entry, format: ['cjs'], clean: false },
]);
