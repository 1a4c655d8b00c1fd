/**
 * The product's layers, bottom to top (README "Layout"). A folder may import only from folders on
 * lower rows; from a folder on its own row, types only. test/layers.test.ts enforces it.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['core'],
  ['sandbox', 'providers', 'blobs', 'privacy'],
  ['ledger'],
  ['activities', 'workflows'],
  ['temporal'],
  ['jobs'],
  ['server'],
  ['cli'],
];

/** Bundled demo APIs: stand-alone servers only the top layer (the CLI) may start; they import nothing of the product. */
export const STANDALONE = ['demo-apis'] as const;

/** Every folder of product code, for checks that read the sources. */
export const SOURCE_FOLDERS: readonly string[] = [...LAYERS.flat(), ...STANDALONE];
