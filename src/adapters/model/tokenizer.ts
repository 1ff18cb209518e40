import { readFile } from 'node:fs/promises';
import { Tokenizer } from '@huggingface/tokenizers';
import { TriageError } from '../../domain/errors.ts';

export interface TextEncoding {
  inputIds: number[];
  attentionMask: number[];
}

/**
 * The WordPiece tokenizer trained with the model. tokenizer.json carries no truncation or
 * padding on purpose: both are done here the way the manifest says, identically to training
 * (keep the first maxLength-1 ids, then [SEP]; pad with [PAD] when a batch is assembled).
 */
export class TextTokenizer {
  readonly padId: number;
  readonly clsId: number;
  readonly sepId: number;

  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly maxLength: number,
    ids: { pad: number; cls: number; sep: number },
  ) {
    this.padId = ids.pad;
    this.clsId = ids.cls;
    this.sepId = ids.sep;
  }

  static async load(file: string, maxLength: number): Promise<TextTokenizer> {
    let json: { added_tokens?: { id: number; content: string }[] };
    try {
      json = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new TriageError('MANIFEST_INVALID', `cannot read tokenizer ${file}: ${(err as Error).message}`, { cause: err });
    }
    const special = new Map((json.added_tokens ?? []).map((t) => [t.content, t.id]));
    const pad = special.get('[PAD]');
    const cls = special.get('[CLS]');
    const sep = special.get('[SEP]');
    if (pad === undefined || cls === undefined || sep === undefined) {
      throw new TriageError('MANIFEST_INVALID', `tokenizer ${file} lacks one of the special tokens [PAD], [CLS], [SEP]`);
    }
    return new TextTokenizer(new Tokenizer(json, {}), maxLength, { pad, cls, sep });
  }

  encode(text: string): TextEncoding {
    let ids = this.tokenizer.encode(text).ids;
    if (ids.length > this.maxLength) ids = [...ids.slice(0, this.maxLength - 1), this.sepId];
    return { inputIds: ids, attentionMask: ids.map(() => 1) };
  }

  /** The manifest's "text masked" ablation: an empty text the encoder can still attend to. */
  masked(): TextEncoding {
    return { inputIds: [this.clsId, this.sepId], attentionMask: [1, 1] };
  }
}
