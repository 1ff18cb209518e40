"""Pure-Python BERT WordPiece tokenizer reading a Hugging Face ``tokenizer.json``.

Implements exactly the pipeline the reference tokenizer (models/cxr-triage/tokenizer.json)
declares, for environments without the Python ``tokenizers`` package:

* BertNormalizer: clean_text (drop NUL / U+FFFD / control chars, whitespace -> ' '),
  handle_chinese_chars (spaces around CJK ideographs), strip_accents (NFD, drop Mn),
  lowercase;
* BertPreTokenizer: split on whitespace, every punctuation char is its own word;
* WordPiece: greedy longest match, ``##`` continuation prefix, a word that cannot be
  matched (or longer than max_input_chars_per_word) becomes [UNK];
* post-processor template ``[CLS] $A [SEP]``.

Truncation is the project's (models/training/preprocess.encode_text and the Node
TextTokenizer): keep the first maxLength-1 ids, then [SEP].  The ids are checked against
the ids precomputed in models/testset/index.json and against Node's
@huggingface/tokenizers (models/training/tokens.mjs) by build_seed_arch.py.
"""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path


def _is_whitespace(c: str) -> bool:
    if c in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(c) == "Zs" or c.isspace()


def _is_control(c: str) -> bool:
    if c in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")


def _is_punctuation(c: str) -> bool:
    o = ord(c)
    if (33 <= o <= 47) or (58 <= o <= 64) or (91 <= o <= 96) or (123 <= o <= 126):
        return True
    return unicodedata.category(c).startswith("P")


def _is_chinese(o: int) -> bool:
    return ((0x4E00 <= o <= 0x9FFF) or (0x3400 <= o <= 0x4DBF) or (0x20000 <= o <= 0x2A6DF)
            or (0x2A700 <= o <= 0x2B73F) or (0x2B740 <= o <= 0x2B81F) or (0x2B820 <= o <= 0x2CEAF)
            or (0xF900 <= o <= 0xFAFF) or (0x2F800 <= o <= 0x2FA1F))


class WordPieceTokenizer:
    def __init__(self, path):
        j = json.loads(Path(path).read_text(encoding="utf-8"))
        m = j["model"]
        assert m["type"] == "WordPiece", m["type"]
        self.vocab = dict(m["vocab"])
        self.unk = m.get("unk_token", "[UNK]")
        self.prefix = m.get("continuing_subword_prefix", "##")
        self.max_chars = int(m.get("max_input_chars_per_word", 100))
        n = j.get("normalizer") or {}
        assert n.get("type") == "BertNormalizer", n
        self.clean_text = n.get("clean_text", True)
        self.chinese = n.get("handle_chinese_chars", True)
        self.lowercase = n.get("lowercase", True)
        sa = n.get("strip_accents")
        self.strip_accents = self.lowercase if sa is None else sa
        assert (j.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
        for t in j.get("added_tokens") or []:
            self.vocab.setdefault(t["content"], t["id"])
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]
        self.pad_id = self.vocab["[PAD]"]
        self.unk_id = self.vocab[self.unk]

    def vocab_size(self) -> int:
        return max(self.vocab.values()) + 1

    def normalize(self, text: str) -> str:
        if self.clean_text:
            text = "".join(" " if _is_whitespace(c) else c for c in text
                           if not (c == "\0" or c == "\ufffd" or _is_control(c)))
        if self.chinese:
            text = "".join(f" {c} " if _is_chinese(ord(c)) else c for c in text)
        if self.strip_accents:
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
        if self.lowercase:
            text = text.lower()
        return text

    @staticmethod
    def pre_tokenize(text: str) -> list:
        words, cur = [], []
        for c in text:
            if _is_whitespace(c):
                if cur:
                    words.append("".join(cur)); cur = []
            elif _is_punctuation(c):
                if cur:
                    words.append("".join(cur)); cur = []
                words.append(c)
            else:
                cur.append(c)
        if cur:
            words.append("".join(cur))
        return words

    def wordpiece(self, word: str) -> list:
        if len(word) > self.max_chars:
            return [self.unk_id]
        out, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                sub = word[start:end]
                if start > 0:
                    sub = self.prefix + sub
                if sub in self.vocab:
                    found = self.vocab[sub]
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            out.append(found)
            start = end
        return out

    def encode(self, text: str, max_length: int | None = 128) -> list:
        """[CLS] wordpieces [SEP]; longer than max_length: first max_length-1 ids + [SEP]."""
        ids = [self.cls_id]
        for w in self.pre_tokenize(self.normalize(text)):
            ids.extend(self.wordpiece(w))
        ids.append(self.sep_id)
        if max_length is not None and len(ids) > max_length:
            ids = ids[: max_length - 1] + [self.sep_id]
        return ids
