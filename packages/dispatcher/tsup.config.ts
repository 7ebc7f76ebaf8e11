import { packageBuild } from '../../tsup.base.js';

// `cli` is the `mq-dispatch` bin (its source starts with a `#!` line, which esbuild keeps).
// `shims` gives the CJS build `import.meta.url`: the dispatcher finds its bundled memory driver
// from its own folder.
export default packageBuild(
  { index: 'src/index.ts', cli: 'src/cli.ts' },
  { dts: { entry: { index: 'src/index.ts' } }, shims: true },
);
