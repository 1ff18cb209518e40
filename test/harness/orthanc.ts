/**
 * Test-side entry point for a real Orthanc. The launcher lives in src/sandbox/orthanc.ts
 * (the sandbox uses it too); this module re-exports it and adds vitest lifecycle helpers.
 *
 *   import { useOrthanc } from './orthanc.ts';
 *   import { requireOrthanc } from './require-servers.ts';
 *
 *   describe.skipIf(!requireOrthanc())('my PACS test', () => {
 *     const orthanc = useOrthanc();            // started in beforeAll, cleaned up in afterAll
 *     it('...', async () => { await fetch(`${orthanc.dicomWebUrl}/studies`, { headers: { authorization: orthanc.authorization } }); });
 *   });
 */
import { afterAll, beforeAll } from 'vitest';
import { OrthancServer, type OrthancOptions } from '../../src/sandbox/orthanc.ts';

export {
  OrthancServer,
  OrthancStartError,
  findDicomWebPlugin,
  findOrthancBinary,
  freePorts,
  startOrthanc,
  type OrthancAuth,
  type OrthancOptions,
  type OrthancUploadResult,
} from '../../src/sandbox/orthanc.ts';
export { makeSyntheticCt, newUid, type SyntheticCtOptions, type SyntheticInstance } from '../../src/sandbox/synthetic-dicom.ts';

/**
 * Registers beforeAll(start) / afterAll(cleanup) in the current describe block (or file) and
 * returns the server object at once (its ports/URLs are readable once beforeAll has run).
 * Set ORTHANC_TEST_LOG=1 to echo Orthanc's log to stderr.
 */
export function useOrthanc(options: OrthancOptions = {}): OrthancServer {
  const server = new OrthancServer({
    ...(process.env.ORTHANC_TEST_LOG ? { onLog: (line: string) => process.stderr.write(`[orthanc] ${line}\n`) } : {}),
    ...options,
  });
  beforeAll(async () => {
    await server.start();
  });
  afterAll(async () => {
    await server.cleanup();
  });
  return server;
}
