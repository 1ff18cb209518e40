// The worker thread's entry: TypeScript sources run through tsx here as in the main thread (bin.mjs).
import { register } from 'tsx/esm/api';

register();
await import('./dicom-worker.ts');
