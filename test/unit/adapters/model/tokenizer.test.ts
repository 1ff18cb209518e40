/**
 * Any tokenizer.json runs (WordPiece, BPE, Unigram) with the manifest's max length, truncation
 * side and padding token — small tokenizers written here, run by @huggingface/tokenizers.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../../../src/adapters/model/tokenizer.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'tokenizer-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** A byte-pair model whose merges build "chest" and "pain"; <s> … </s> around a text. */
const BPE = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [special(0, '<pad>'), special(1, '<s>'), special(2, '</s>')],
  normalizer: { type: 'Lowercase' },
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
    pair: [],
    special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } },
  },
  decoder: null,
  model: {
    type: 'BPE',
    dropout: null,
    unk_token: '<unk>',
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    vocab: { '<pad>': 0, '<s>': 1, '</s>': 2, '<unk>': 3, c: 4, h: 5, e: 6, s: 7, t: 8, ch: 9, che: 10, ches: 11, chest: 12, p: 13, a: 14, i: 15, n: 16, pa: 17, pai: 18, pain: 19 },
    merges: ['c h', 'ch e', 'che s', 'ches t', 'p a', 'pa i', 'pai n'],
  },
};

/** A SentencePiece-style unigram model without special tokens around a text. */
const UNIGRAM = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [special(0, '<pad>')],
  normalizer: null,
  pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
  post_processor: null,
  decoder: null,
  model: { type: 'Unigram', unk_id: 1, byte_fallback: false, vocab: [['<pad>', 0], ['<unk>', 0], ['▁chest', -1], ['▁pain', -1.5], ['▁', -3], ['c', -4], ['h', -4]] },
};

function file(name: string, json: unknown): string {
  const f = path.join(tmp, name);
  writeFileSync(f, JSON.stringify(json));
  return f;
}

describe('TextTokenizer', () => {
  it('BPE: the post-processor\'s specials stay when a long text is cut, on the right or on the left', async () => {
    const f = file('bpe.json', BPE);
    const right = await TextTokenizer.load(f, { maxLength: 4, truncation: 'right' });
    expect([right.kind, right.padId, right.specials]).toEqual(['BPE', 0, { prefix: 1, suffix: 1 }]);
    expect(right.encode('Chest pain').inputIds).toEqual([1, 12, 19, 2]);
    expect(right.encode('chest chest pain pain')).toEqual({ inputIds: [1, 12, 12, 2], attentionMask: [1, 1, 1, 1], tokenTypeIds: [0, 0, 0, 0] });
    const left = await TextTokenizer.load(f, { maxLength: 4, truncation: 'left' });
    expect(left.encode('chest chest pain pain').inputIds).toEqual([1, 19, 19, 2]);
    expect(left.masked().inputIds).toEqual([1, 2]);
  });

  it('Unigram: no specials, so a cut text is just its first (or last) tokens', async () => {
    const f = file('unigram.json', UNIGRAM);
    const t = await TextTokenizer.load(f, { maxLength: 2, truncation: 'right' });
    expect([t.kind, t.padId, t.specials]).toEqual(['Unigram', 0, { prefix: 0, suffix: 0 }]);
    expect(t.encode('chest pain chest').inputIds).toEqual([2, 3]);
    expect((await TextTokenizer.load(f, { maxLength: 2, truncation: 'left' })).encode('chest pain pain').inputIds).toEqual([3, 3]);
  });

  it('a tokenizer that names no padding token: refused with the fix; text.padToken names one', async () => {
    const f = file('nopad.json', { ...BPE, added_tokens: BPE.added_tokens.slice(1) });
    await expect(TextTokenizer.load(f, { maxLength: 8, truncation: 'right' })).rejects.toMatchObject({
      code: 'MANIFEST_INVALID',
      message: expect.stringContaining('names no padding token (no padding.pad_id, none of [PAD], <pad>, <|pad|> among its added tokens); set text.padToken'),
    });
    expect((await TextTokenizer.load(f, { maxLength: 8, truncation: 'right', padToken: '</s>' })).padId).toBe(2);
    await expect(TextTokenizer.load(f, { maxLength: 8, truncation: 'right', padToken: '<nope>' })).rejects.toMatchObject({ message: expect.stringContaining('has no token "<nope>" (text.padToken)') });
  });

  it('a max length that leaves no room between the specials is refused', async () => {
    await expect(TextTokenizer.load(file('bpe2.json', BPE), { maxLength: 2, truncation: 'right' })).rejects.toMatchObject({ code: 'MANIFEST_INVALID', message: expect.stringContaining('leaves no room') });
  });

  it('WordPiece (the bundled BERT tokenizer): [CLS] … [SEP], token type ids, 128 tokens at most', async () => {
    const t = await TextTokenizer.load('models/cxr-resnet-bert/tokenizer.json', { maxLength: 128, truncation: 'right' });
    expect(t.kind).toBe('WordPiece');
    const e = t.encode('indication: chest pain '.repeat(100));
    expect(e.inputIds).toHaveLength(128);
    expect(e.tokenTypeIds).toEqual(new Array(128).fill(0));
    expect(e.inputIds.at(-1)).toBe(t.encode('').inputIds.at(-1));
  });
});
