import { describe, expect, it } from 'vitest';
import { openSession, sessionFactoryFor, type ExecutionProvider } from '../../../../src/adapters/model/session.ts';
import * as ort from 'onnxruntime-node';
import { TriageError } from '../../../../src/domain/errors.ts';

function recorder() {
  const lines: { level: string; obj: Record<string, unknown> }[] = [];
  return {
    lines,
    log: {
      info: (obj: object) => lines.push({ level: 'info', obj: obj as Record<string, unknown> }),
      warn: (obj: object) => lines.push({ level: 'warn', obj: obj as Record<string, unknown> }),
      error: (obj: object) => lines.push({ level: 'error', obj: obj as Record<string, unknown> }),
      debug: (obj: object) => lines.push({ level: 'debug', obj: obj as Record<string, unknown> }),
    },
  };
}

const fakeSession = { inputNames: [], outputNames: [] } as unknown as ort.InferenceSession;

describe('openSession', () => {
  it('falls back to the next provider when one cannot load, and logs both', async () => {
    const { lines, log } = recorder();
    const tried: ExecutionProvider[] = [];
    const opened = await openSession('model.onnx', ['cuda', 'webgpu', 'cpu'], log, async (_path, provider) => {
      tried.push(provider);
      if (provider !== 'cpu') throw new Error(`${provider} libraries not found\nmore detail`);
      return fakeSession;
    });
    expect(tried).toEqual(['cuda', 'webgpu', 'cpu']);
    expect(opened.provider).toBe('cpu');
    expect(opened.skipped).toEqual([
      { provider: 'cuda', reason: 'cuda libraries not found' },
      { provider: 'webgpu', reason: 'webgpu libraries not found' },
    ]);
    expect(lines.map((l) => [l.level, l.obj['event'], l.obj['provider']])).toEqual([
      ['warn', 'model.provider.unavailable', 'cuda'],
      ['warn', 'model.provider.unavailable', 'webgpu'],
      ['info', 'model.provider.selected', 'cpu'],
    ]);
  });

  it('with the real onnxruntime-node: cuda without its libraries and webgpu without an adapter fall back to cpu', async () => {
    const { lines, log } = recorder();
    const opened = await openSession('models/cxr-triage/model.onnx', ['cuda', 'webgpu', 'cpu'], log);
    try {
      // On a machine with the CUDA libraries and a GPU this picks cuda; CI machines have neither.
      if (opened.provider === 'cpu') {
        expect(lines.map((l) => [l.obj['event'], l.obj['provider']])).toEqual([
          ['model.provider.unavailable', 'cuda'],
          ['model.provider.unavailable', 'webgpu'],
          ['model.provider.selected', 'cpu'],
        ]);
      }
      expect(['cuda', 'webgpu', 'cpu']).toContain(opened.provider);
    } finally {
      await opened.session.release();
    }
  });

  it('model.cpu threading (one thread, spinning on or off) changes the speed, not the outputs', async () => {
    const { log } = recorder();
    const feeds = (): Record<string, ort.Tensor> => {
      const image = new Float32Array(224 * 224).map((_, i) => Math.sin(i / 97));
      return {
        image: new ort.Tensor('float32', image, [1, 1, 224, 224]),
        input_ids: new ort.Tensor('int64', BigInt64Array.from([2n, 40n, 41n, 3n]), [1, 4]),
        attention_mask: new ort.Tensor('int64', BigInt64Array.from([1n, 1n, 1n, 1n]), [1, 4]),
      };
    };
    const outputs: Float32Array[] = [];
    for (const cpu of [{ spinning: true }, { threads: 1, spinning: false }]) {
      const opened = await openSession('models/cxr-triage/model.onnx', ['cpu'], log, sessionFactoryFor(cpu));
      try {
        const out = await opened.session.run(feeds());
        outputs.push(out[opened.session.outputNames[0]!]!.data as Float32Array);
      } finally {
        await opened.session.release();
      }
    }
    expect(outputs[1]!.length).toBeGreaterThan(0);
    for (let i = 0; i < outputs[0]!.length; i++) expect(Math.abs(outputs[1]![i]! - outputs[0]![i]!)).toBeLessThan(1e-5);
  });

  it('names every provider that failed when none loads', async () => {
    const { log } = recorder();
    const err = await openSession('m.onnx', ['cuda', 'cpu'], log, async (_p, provider) => {
      throw new Error(`no ${provider}`);
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TriageError);
    expect((err as TriageError).code).toBe('MODEL_LOAD_FAILED');
    expect((err as TriageError).message).toContain('cuda: no cuda; cpu: no cpu');
  });
});
