/**
 * Test configuration: `vitest run --config test/vitest.config.ts` (what `npm test` runs, through test/run.ts).
 *
 * Two projects:
 *  - unit: everything under test/ except test/integration, files in parallel;
 *  - integration: test/integration/**, after the unit group, one file at a time in a single
 *    fork. Each file still picks free ports (several Orthancs could coexist); running them one
 *    at a time keeps start-up and timing-sensitive tests (timeouts, retries) off a loaded CPU.
 *
 * Integration tests need Orthanc (Debian packages orthanc + orthanc-dicomweb) and PostgreSQL
 * (Debian's postgresql); with CI set a missing one fails the run (test/harness/require-servers.ts). Orthanc listens on every
 * interface, so test/run.ts runs vitest in a network namespace that has only loopback where it can (.ci/run insists).
 */
import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('..', import.meta.url));

export default defineConfig({
  root,
  test: {
    // include/exclude live in the projects only: `extends: true` concatenates arrays, so a
    // root-level include would pull every test into the integration project as well.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/fixtures/**', 'test/integration/**'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
