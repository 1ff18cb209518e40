/**
 * The direction of imports, enforced by the test command (test/unit/architecture.test.ts):
 *
 *   domain ← dicom ← config ← adapters | state ← observability ← pipeline ← api | evaluate ← compose ← commands ← cli
 *
 * A layer imports its own and lower layers only; adapters and state are siblings that do not
 * import each other (the pipeline's ports and the composition root join them). The sandbox
 * (test servers and synthetic data) is a tool: nothing in src/ imports it.
 */
const LAYERS = [
  ['domain'],
  ['dicom'],
  ['config'],
  ['adapters', 'state'],
  ['observability'],
  ['pipeline'],
  ['api', 'evaluate'],
  ['compose'],
  ['commands'],
  ['cli.ts', 'bin.mjs', 'sandbox'],
];

const folder = (name) => (name.includes('.') ? `^src/${name.replace('.', '\\.')}$` : `^src/${name}/`);
const rules = [];
LAYERS.forEach((layer, i) => {
  const above = LAYERS.slice(i + 1).flat();
  for (const name of layer) {
    if (above.length > 0) {
      rules.push({
        name: `${name}-imports-down-only`,
        comment: `src/${name} is layer ${i}; it may not import ${above.join(', ')}`,
        severity: 'error',
        from: { path: folder(name) },
        to: { path: above.map(folder).join('|') },
      });
    }
  }
});
rules.push(
  { name: 'adapters-not-state', severity: 'error', from: { path: '^src/adapters/' }, to: { path: '^src/state/' } },
  { name: 'state-not-adapters', severity: 'error', from: { path: '^src/state/' }, to: { path: '^src/adapters/' } },
  { name: 'no-circular', severity: 'error', from: { path: '^src/' }, to: { circular: true } },
);

module.exports = {
  forbidden: rules,
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|test|models|docker)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
