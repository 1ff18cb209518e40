/**
 * The watched folder on a real file system: headers read from a prefix (a multi-gigabyte sparse
 * file costs nothing), files refused over the limit unread, private modes for what we move and
 * write, and a name collision with an earlier unreadable file resolved instead of failing forever.
 */
import { closeSync, copyFileSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalFolder } from '../../../../src/adapters/files/folder-watch.ts';
import { DEFAULT_DICOM_LIMITS } from '../../../../src/dicom/limits.ts';

const DEMO = 'test/fixtures/demo/dicom/demo01.dcm';

function folder(): { root: string; fs: LocalFolder } {
  const root = mkdtempSync(path.join(tmpdir(), 'watched-'));
  return { root, fs: new LocalFolder({ root, doneDir: path.join(root, '.done'), failedDir: path.join(root, '.failed') }, { ...DEFAULT_DICOM_LIMITS, maxFileBytes: 64 * 1024 * 1024 }) };
}

const mode = (f: string): number => statSync(f).mode & 0o777;

describe('LocalFolder', () => {
  it('reads a header from a prefix: a DICOM file with 3 GB of sparse trailing bytes scans in well under a second', async () => {
    const { root, fs } = folder();
    const big = path.join(root, 'big.dcm');
    copyFileSync(DEMO, big);
    const fd = openSync(big, 'r+');
    ftruncateSync(fd, 3 * 1024 ** 3); // sparse: nothing is written, nothing may be read
    closeSync(fd);
    const start = performance.now();
    const [file] = await new LocalFolder({ root, doneDir: path.join(root, '.done'), failedDir: path.join(root, '.failed') }, { ...DEFAULT_DICOM_LIMITS, maxFileBytes: 4 * 1024 ** 3 }).scan();
    expect(performance.now() - start).toBeLessThan(1_000);
    expect(file).toMatchObject({ kind: 'dicom', meta: { Modality: expect.any(String) } });
    // Over limits.dicom.maxFileBytes it is refused unread, with a named error.
    const [refused] = await fs.scan();
    expect(refused).toMatchObject({ kind: 'unreadable', code: 'DICOM_TOO_LARGE' });
  });

  it('moves files and writes notes 0600 into 0700 folders, whatever the mode they were dropped with', async () => {
    const old = process.umask(0o000);
    try {
      const { root, fs } = folder();
      writeFileSync(path.join(root, 'x.dcm'), 'not dicom', { mode: 0o666 });
      await fs.writeNote('unreadable/x.dcm.reason.txt', 'DICOM_UNREADABLE: not dicom\n');
      await fs.move('x.dcm', 'failed', 'unreadable/x.dcm');
      copyFileSync(DEMO, path.join(root, 'd.dcm'));
      await fs.move('d.dcm', 'done', '1.2.3/d.dcm');
      for (const d of ['.failed', '.failed/unreadable', '.done', '.done/1.2.3']) expect(mode(path.join(root, d)), d).toBe(0o700);
      for (const f of ['.failed/unreadable/x.dcm', '.failed/unreadable/x.dcm.reason.txt', '.done/1.2.3/d.dcm']) expect(mode(path.join(root, f)), f).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });

  it('regression: a folder named like an earlier unreadable file goes beside it (a~1), instead of EEXIST on every pass', async () => {
    const { root, fs } = folder();
    writeFileSync(path.join(root, 'a'), 'junk');
    await fs.writeNote('unreadable/a.reason.txt', 'r\n');
    await fs.move('a', 'failed', 'unreadable/a');
    mkdirSync(path.join(root, 'a'));
    writeFileSync(path.join(root, 'a', 'b.dcm'), 'junk too');
    await fs.writeNote('unreadable/a/b.dcm.reason.txt', 'r\n');
    await fs.move('a/b.dcm', 'failed', 'unreadable/a/b.dcm');
    expect(readdirSync(path.join(root, '.failed', 'unreadable')).sort()).toEqual(['a', 'a.reason.txt', 'a~1']);
    expect(readdirSync(path.join(root, '.failed', 'unreadable', 'a~1')).sort()).toEqual(['b.dcm', 'b.dcm.reason.txt']);
  });
});
