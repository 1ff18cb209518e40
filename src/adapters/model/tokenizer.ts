import { readFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';
import { TriageError } from '../../domain/errors.ts';
import type { TextSpec } from '../../config/manifest.ts';

export interface TextEncoding {
  inputIds: number[];
  attentionMask: number[];
  /** Segment ids, where the tokenizer gives them (BERT's token_type_ids). */
  tokenTypeIds?: number[];
}

/** Added tokens taken as the padding token when tokenizer.json has no `padding.pad_id`. */
const PAD_TOKENS = ['[PAD]', '<pad>', '<|pad|>', '<PAD>'];

/**
 * Any Hugging Face tokenizer.json (WordPiece, BPE, Unigram…), run by @huggingface/tokenizers
 * with its own normaliser, pre-tokeniser and post-processor (the special tokens it adds).
 * Truncation and padding are done here, as the manifest says, whatever tokenizer.json
 * configures: an over-long text loses tokens at the manifest's `truncation` end while the
 * special tokens around it stay (BERT: [CLS] + the first maxLength-2 tokens + [SEP], as the
 * bundled models were trained); batches are padded when they are assembled.
 */
export class TextTokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly maxLength: number,
    readonly truncation: 'left' | 'right',
    readonly padId: number,
    /** The tokenizer model's type (WordPiece, BPE, Unigram…) and vocabulary size, for `model check`. */
    readonly kind: string,
    readonly vocabSize: number,
    /** What the post-processor puts before and after a text (e.g. [CLS] and [SEP]). */
    readonly specials: { prefix: number; suffix: number },
  ) {}

  static async load(file: string, text: Pick<TextSpec, 'maxLength' | 'truncation' | 'padToken'>): Promise<TextTokenizer> {
    let json: { added_tokens?: { id: number; content: string }[]; padding?: { pad_id?: number } | null; model?: { type?: string } };
    try {
      json = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new TriageError('MANIFEST_INVALID', `cannot read tokenizer ${file}: ${(err as Error).message}`, { cause: err, where: file });
    }
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json, {});
    } catch (err) {
      throw new TriageError('MANIFEST_INVALID', `tokenizer ${file} is not a tokenizer.json @huggingface/tokenizers can run: ${(err as Error).message}`, { cause: err, where: file });
    }
    const added = new Map((json.added_tokens ?? []).map((t) => [t.content, t.id]));
    const padId =
      (text.padToken === undefined ? undefined : (added.get(text.padToken) ?? tokenizer.token_to_id(text.padToken))) ??
      json.padding?.pad_id ??
      PAD_TOKENS.map((t) => added.get(t)).find((id) => id !== undefined);
    if (padId === undefined) {
      const why = text.padToken === undefined ? 'names no padding token (no padding.pad_id, none of [PAD], <pad>, <|pad|> among its added tokens)' : `has no token "${text.padToken}" (text.padToken)`;
      throw new TriageError('MANIFEST_INVALID', `tokenizer ${file} ${why}; set text.padToken in the manifest to the token the model was trained to pad with`, { where: file });
    }
    // How many special tokens the post-processor adds around a text, found on a probe.
    const probe = 'a b';
    const full: number[] = tokenizer.encode(probe).ids;
    const plain: number[] = tokenizer.encode(probe, { add_special_tokens: false }).ids;
    let prefix = 0;
    while (prefix + plain.length <= full.length && plain.some((id, i) => full[prefix + i] !== id)) prefix++;
    const specials = prefix + plain.length <= full.length ? { prefix, suffix: full.length - prefix - plain.length } : { prefix: 0, suffix: 0 };
    if (specials.prefix + specials.suffix >= text.maxLength) {
      throw new TriageError('MANIFEST_INVALID', `text.maxLength ${text.maxLength} leaves no room for text between the tokenizer's ${specials.prefix + specials.suffix} special tokens`, { where: file });
    }
    return new TextTokenizer(tokenizer, text.maxLength, text.truncation, padId, json.model?.type ?? 'unknown', tokenizer.get_vocab(true).size, specials);
  }

  encode(text: string): TextEncoding {
    const full = this.tokenizer.encode(text, { return_token_type_ids: true });
    // A tokenizer.json without a post-processor gives no token type ids: one segment, all 0.
    const types: number[] = full.token_type_ids ?? full.ids.map(() => 0);
    if (full.ids.length <= this.maxLength) return { inputIds: full.ids, attentionMask: full.ids.map(() => 1), tokenTypeIds: types };
    const { prefix, suffix } = this.specials;
    const budget = this.maxLength - prefix - suffix;
    const inner = full.ids.length - prefix - suffix;
    const from = this.truncation === 'right' ? prefix : prefix + inner - budget;
    const keep = (list: number[]): number[] => [...list.slice(0, prefix), ...list.slice(from, from + budget), ...list.slice(list.length - suffix)];
    const inputIds = keep(full.ids);
    return { inputIds, attentionMask: inputIds.map(() => 1), tokenTypeIds: keep(types) };
  }

  /** The manifest's "text masked" ablation: the special tokens of an empty text, which the encoder can still attend to. */
  masked(): TextEncoding {
    return this.encode('');
  }
}
