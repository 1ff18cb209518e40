/**
 * Node's side of the bench's preprocessing comparison, in a process of its own as Python's is:
 * measured inside the bench, it paid for the garbage collection of the FHIR server and model
 * the bench process holds. Reads every .dcm in the folder from disk and preprocesses it as the
 * pipeline does; prints the best of 5 passes in ms per image.
 *
 *   node --import tsx test/bench/preprocess-files.ts <folder> <manifest.json>
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { imageToTensor } from '../../src/pipeline/preprocess/index.ts';
import { parseManifest } from '../../src/config/manifest.ts';
import { readDicom } from '../../src/dicom/index.ts';

const [dir, manifestFile] = process.argv.slice(2);
if (!dir || !manifestFile) throw new Error('usage: preprocess-files.ts <folder> <manifest.json>');
const spec = parseManifest(JSON.parse(readFileSync(manifestFile, 'utf8')), manifestFile).image;
const files = readdirSync(dir).filter((f) => f.endsWith('.dcm')).sort().map((f) => path.join(dir, f));
let best = Infinity;
for (let pass = 0; pass < 5; pass++) {
  const t = performance.now();
  for (const f of files) imageToTensor(readDicom(readFileSync(f)), spec);
  best = Math.min(best, (performance.now() - t) / files.length);
}
console.log(best);
