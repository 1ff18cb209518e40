/**
 * A small pool of worker threads for DICOM decoding (limits.dicom still applies inside them).
 * What it buys: a file that takes seconds to decode (a large legitimate image, or a crafted one
 * within the limits) no longer stops the event loop, so /healthz, the API and the webhook keep
 * answering while it is read. A thread that dies (out of memory) is replaced, and its task fails
 * with INTERNAL instead of hanging.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { TriageError } from '../../domain/errors.ts';
import type { InstanceMeta } from '../../domain/types.ts';
import type { DicomLimits } from '../../dicom/limits.ts';
import { NeedMoreBytes } from '../../dicom/read.ts';
import type { ImageSpec, TensorResult } from '../../pipeline/preprocess/image-tensor.ts';
import type { Answer, Task } from './protocol.ts';

type Pending = { resolve: (a: Answer) => void; reject: (e: unknown) => void };
type TaskInput = Task extends infer T ? (T extends Task ? Omit<T, 'id'> : never) : never;

/** The bytes as an ArrayBuffer this side may give away (a view of a pooled or shared buffer is copied). */
function transferable(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) return bytes.buffer;
  // A copy: not bytes.slice(), which on a Node Buffer is a view of the same (larger) memory.
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}

class Thread {
  private worker: Worker;
  readonly pending = new Map<number, Pending>();

  constructor(private readonly onExit: (thread: Thread) => void) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    // tsx runs the TypeScript sources in the thread as it does in the main one.
    const worker = new Worker(new URL('./dicom-worker.mjs', import.meta.url));
    worker.unref();
    worker.on('message', (answer: Answer) => {
      const p = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      p?.resolve(answer);
    });
    const died = (reason: string): void => {
      for (const p of this.pending.values()) p.reject(new TriageError('INTERNAL', `a DICOM worker thread ${reason}`, { where: 'decode' }));
      this.pending.clear();
      this.onExit(this);
    };
    worker.on('error', (err) => died(`failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (code !== 0 || this.pending.size > 0) died(`exited (${code})`);
    });
    return worker;
  }

  send(task: Task, transfer: ArrayBuffer[]): Promise<Answer> {
    return new Promise((resolve, reject) => {
      this.pending.set(task.id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage(task, transfer);
    }).finally(() => {
      if (this.pending.size === 0) this.worker.unref();
    }) as Promise<Answer>;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

export class DicomWorkerPool {
  private threads: Thread[] = [];
  private next = 0;
  private seq = 0;
  private closed = false;

  constructor(private readonly size: number = Math.max(1, Math.min(2, availableParallelism()))) {
    for (let i = 0; i < size; i++) this.threads.push(this.thread());
  }

  private thread(): Thread {
    return new Thread((dead) => {
      if (this.closed) return;
      const i = this.threads.indexOf(dead);
      if (i >= 0) this.threads[i] = this.thread();
    });
  }

  /** The least busy thread (ties: round robin). */
  private pick(): Thread {
    const start = this.next++ % this.threads.length;
    let best = this.threads[start] as Thread;
    for (let k = 1; k < this.threads.length; k++) {
      const t = this.threads[(start + k) % this.threads.length] as Thread;
      if (t.pending.size < best.pending.size) best = t;
    }
    return best;
  }

  private async run(input: TaskInput): Promise<Answer> {
    if (this.closed) throw new TriageError('INTERNAL', 'the DICOM worker pool is closed', { where: 'decode' });
    const task = { ...input, id: ++this.seq } as Task;
    const answer = await this.pick().send(task, [task.bytes]);
    if (!answer.ok && 'error' in answer) throw new TriageError(answer.error.code, answer.error.message, answer.error.where === undefined ? {} : { where: answer.error.where });
    return answer;
  }

  /** readDicomHeader in a thread (`partial`: throws NeedMoreBytes when the prefix is too short). */
  async header(bytes: Uint8Array, limits: Partial<DicomLimits>, partial: boolean, where: string): Promise<InstanceMeta> {
    const answer = await this.run({ kind: 'header', bytes: transferable(bytes), limits, partial, where });
    if (!answer.ok) throw new NeedMoreBytes();
    if (!('meta' in answer)) throw new TriageError('INTERNAL', 'the DICOM worker answered a header task with something else', { where });
    return answer.meta;
  }

  /** readDicom + imageToTensor in a thread. */
  async tensor(bytes: Uint8Array, spec: ImageSpec, limits: Partial<DicomLimits>, where = 'preprocess'): Promise<TensorResult> {
    const answer = await this.run({ kind: 'tensor', bytes: transferable(bytes), limits, spec, where });
    if (!answer.ok || !('tensor' in answer)) throw new TriageError('INTERNAL', 'the DICOM worker answered a tensor task with something else', { where });
    return answer.tensor;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.close()));
  }
}
