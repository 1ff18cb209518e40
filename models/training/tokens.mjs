// Tokenise texts with Node's @huggingface/tokenizers, the way the service does
// (src/adapters/model/tokenizer.ts: tokenizer.json as is, then keep the first maxLength-1
// ids + [SEP]), so build_seed_arch.py can check its Python WordPiece ids against it.
//
//   node models/training/tokens.mjs <tokenizer.json> <texts.json> <out.json> [maxLength]
import { readFileSync, writeFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';

const [tokPath, textsPath, outPath, maxArg] = process.argv.slice(2);
const maxLength = maxArg ? Number(maxArg) : 128;
const json = JSON.parse(readFileSync(tokPath, 'utf8'));
const sep = json.added_tokens.find((t) => t.content === '[SEP]').id;
const tok = new Tokenizer(json, {});
const texts = JSON.parse(readFileSync(textsPath, 'utf8'));
const ids = texts.map((t) => {
  let x = tok.encode(t).ids;
  if (x.length > maxLength) x = [...x.slice(0, maxLength - 1), sep];
  return x;
});
writeFileSync(outPath, JSON.stringify(ids));
console.log(`tokenised ${texts.length} texts`);
