#!/usr/bin/env python3
"""Builds the byte-level BPE tokenizer fixtures for Tests/BonfireModelTests/BPETokenizerTests.swift.

Uses Hugging Face `tokenizers` (pip install tokenizers; checked with 0.23.3) to train four small BPE tokenizers on a
generated corpus and writes, under Tests/BonfireModelTests/Fixtures/tokenizers/:
  corpus.json              a JSON array of the test strings (several scripts and languages, emoji, digit runs,
                           whitespace runs, code, control characters, combining marks, added/special tokens)
  NAME.tokenizer.json      the tokenizer as `tokenizers` saves it
  NAME.ids.bin             HF `encode(s, add_special_tokens=True).ids` for every string: per string a little-endian
                           u16 count, then count little-endian u16 ids (every fixture vocabulary is < 65536)
  NAME.decoded.json        {"prefix": P, "skip": {...}, "plain": {...}}: HF `decode(ids, skip_special_tokens=True)`
                           of string i is skip[i] if present, else the string itself (differences come from
                           normalisation and lossy bytes); `decode(ids, skip_special_tokens=False)` is plain[i] if
                           present, else P + (the skip decoding), P being the decoded template prefix (e.g. "<s> ")
Tokenizers:
  gpt2    ByteLevel pre-tokenizer (GPT-2 regex), ByteLevel decoder, <|endoftext|> special
  llama3  Split(Llama-3 regex, Isolated) + ByteLevel(use_regex=false), ignore_merges, BOS template post-processor
  qwen2   NFC normaliser, Split(Qwen2 regex, Isolated) + ByteLevel, <|im_start|>/<|im_end|> special, a non-special
          added token with lstrip/rstrip
  gpt2ps  the gpt2 file with ByteLevel(add_prefix_space=true) (RoBERTa-style), checked on the first 1000 strings only
  spbf    sentencepiece style: Prepend("▁") + Replace(" ", "▁") normalisers, no pre-tokenizer, byte fallback <0xNN>,
          Replace/ByteFallback/Fuse/Strip decoders, <s> template, trained on Latin text only so other scripts fall back
Run from the repository root: python3 Scripts/make-tokenizer-fixtures.py
"""
import json
import os
import random
import struct

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

OUT = os.path.join("Tests", "BonfireModelTests", "Fixtures", "tokenizers")
GPT2_RE = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_RE = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2_RE = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

WORDS = {
    "en": "the quick brown fox jumps over lazy dog it's we're they've I'm you'll he'd DON'T WE'LL Shouldn't "
          "hello world token model train data value return".split(),
    "fr": "déjà vu où ça garçon élève naïve cœur Noël façade l'été aujourd'hui".split(),
    "de": "Straße Größe über Mädchen Fußgänger ÄÖÜ schön".split(),
    "el": "καλημέρα κόσμε Ελλάδα λόγος ΣΟΦΙΑ".split(),
    "ru": "привет мир Москва съешь ещё этих мягких ЁЛКА".split(),
    "ar": "مرحبا بالعالم العربية كتاب".split(),
    "he": "שלום עולם עברית".split(),
    "hi": "नमस्ते दुनिया हिन्दी क्षत्रिय".split(),
    "th": "สวัสดีชาวโลก ภาษาไทย".split(),
    "zh": "你好世界 中文字符 机器学习 数据".split(),
    "ja": "こんにちは世界 カタカナ ひらがな 東京".split(),
    "ko": "안녕하세요 세계 한국어".split(),
}
EMOJI = ["😀", "🔥", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "🇯🇵", "❤️", "✨", "🧪", "🐍", "1️⃣", "🏳️‍🌈"]
CODE = ["def f(x):\n    return x*2+1\n", "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
        "let xs = [1, 2, 3].map { $0 * 2 }", "if x != None and y >= 3: print(f'{x=}')",
        "#include <stdio.h>\nint main(void) { return 0; }", "SELECT * FROM t WHERE id=42;",
        "    \tpass  # comment\r\n", "x = {'a': [1, 2.5e-3], \"b\": None}", "λx.x ∘ f ≠ g → ∀y ∈ ℝ"]
WS = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "\u00a0", "\u3000", "\u2028", "\u2003", " \t \n",
      "\x0b", "\x0c", "\x85", "    "]
CONTROL = ["\x00", "\x01", "\x07", "\x1b", "\x7f", "\x1f", "\u200b", "\u200d", "\ufeff", "\u0600"]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "Z\u0351\u0352\u0353\u0354", "\u0301", "ά", "é",
             "Å", "\u212b", "\uff21\uff42", "ﬁ", "①", "x²"]
DIGITS = ["0", "7", "42", "123", "1234", "12345", "3.14159", "1,000,000", "-17", "٣٤٥", "१२३", "１２３", "Ⅻ", "½"]
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'Re", "'ſ", "''", "'x", "'"]
PUNCT = [".", ",", "!", "?", "...", "—", "«", "»", "“", "”", "(", ")", "[", "]", "{", "}", "<", ">", "@", "#", "$",
         "%", "^", "&", "*", "_", "~", "`", "|", "\\", "/", ":", ";", "-", "+", "=", "…", "¿", "¡"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|eot_id|>", "<s>", "</s>",
            "<unk>", "[TOOL]", " [TOOL] ", "<|im_sta", "<|", "|>", "<<|endoftext|>>"]


def segment(rng):
    kind = rng.random()
    if kind < 0.35:
        lang = rng.choice(list(WORDS))
        return rng.choice(WORDS[lang])
    pools = [EMOJI, CODE, WS, CONTROL, COMBINING, DIGITS, CONTRACTIONS, PUNCT, SPECIALS]
    weights = [3, 2, 5, 1, 2, 4, 2, 4, 1]
    pool = rng.choices(pools, weights)[0]
    if pool is DIGITS and rng.random() < 0.3:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
    if pool is WS and rng.random() < 0.2:
        return rng.choice([" ", "\t", "\n"]) * rng.randint(1, 12)
    return rng.choice(pool)


def make_string(rng, max_segments=8):
    parts = []
    for _ in range(rng.randint(1, max_segments)):
        parts.append(segment(rng))
        r = rng.random()
        if r < 0.5:
            parts.append(" ")
        elif r < 0.6:
            parts.append(rng.choice(WS))
    return "".join(parts)


def corpus(seed, n):
    rng = random.Random(seed)
    out = ["", " ", "a", "\n", "  hello", "hello  ", "x\r\n\r\ny", "I'M HERE'S 'll", "ſ's'ſ", "1234567",
           "<|endoftext|><|endoftext|>", "abc<|im_start|>def", " [TOOL]  x", "😀😀😀", "\x00\x00", "e\u0301\u0301"]
    while len(out) < n:
        out.append(make_string(rng))
    return out


def train_corpus(seed, latin_only=False):
    rng = random.Random(seed)
    texts = []
    for _ in range(4000):
        s = make_string(rng)
        if latin_only:
            s = "".join(c for c in s if ord(c) < 0x250)
        texts.append(s)
    return texts


def bytelevel_bpe(pre, vocab_size, special, seed, normalizer=None, ignore_merges=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=special, show_progress=False)
    tok.train_from_iterator(train_corpus(seed), trainer)
    return tok


def build():
    toks = {}
    t = bytelevel_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True), 1500, ["<|endoftext|>"], 1)
    t.post_processor = processors.ByteLevel(trim_offsets=False)
    toks["gpt2"] = t

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    t = bytelevel_bpe(pre, 1800, ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"], 2, ignore_merges=True)
    t.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                     special_tokens=[("<|begin_of_text|>", 0)])
    toks["llama3"] = t

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_RE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    t = bytelevel_bpe(pre, 1200, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], 3, normalizer=normalizers.NFC())
    t.add_tokens([AddedToken("[TOOL]", lstrip=True, rstrip=True, normalized=False, special=False)])
    toks["qwen2"] = t

    # sentencepiece-style BPE with byte fallback, Llama-2 layout.
    t = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False,
                                  max_token_length=8)
    t.train_from_iterator(train_corpus(4, latin_only=True), trainer)
    j = json.loads(t.to_str())
    vocab = j["model"]["vocab"]
    for b in range(256):
        name = "<0x%02X>" % b
        if name not in vocab:
            vocab[name] = len(vocab)
    # Drop single characters outside ASCII so that they go through byte fallback (e.g. é, ü).
    # (Keeping them would be fine too; this exercises the fallback path more.)
    j["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    t = Tokenizer.from_str(json.dumps(j))
    t.add_tokens([AddedToken("[TOOL]", lstrip=False, rstrip=False, normalized=False, special=False)])
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    toks["spbf"] = t

    j = json.loads(toks["gpt2"].to_str())
    j["pre_tokenizer"]["add_prefix_space"] = True
    toks["gpt2ps"] = Tokenizer.from_str(json.dumps(j))
    return toks


SUBSET = {"gpt2ps": 1000}


def main():
    os.makedirs(OUT, exist_ok=True)
    strings = corpus(12345, 10000)
    with open(os.path.join(OUT, "corpus.json"), "w", encoding="utf-8") as f:
        json.dump(strings, f, ensure_ascii=False, separators=(",", ":"))
    for name, tok in build().items():
        tok.save(os.path.join(OUT, name + ".tokenizer.json"), pretty=False)
        tok = Tokenizer.from_file(os.path.join(OUT, name + ".tokenizer.json"))  # what the Swift side reads
        blob = bytearray()
        plain, skipped = {}, {}
        full = tok.decode(tok.encode("x", add_special_tokens=True).ids, skip_special_tokens=False)
        bare = tok.decode(tok.encode("x", add_special_tokens=False).ids, skip_special_tokens=False)
        prefix = full[:len(full) - len(bare)] if full.endswith(bare) else ""
        total = 0
        for i, s in enumerate(strings[:SUBSET.get(name, len(strings))]):
            ids = tok.encode(s, add_special_tokens=True).ids
            assert max(ids, default=0) < 65536
            blob += struct.pack("<H", len(ids)) + struct.pack("<%dH" % len(ids), *ids)
            total += len(ids)
            ds = tok.decode(ids, skip_special_tokens=True)
            if ds != s:
                skipped[str(i)] = ds
            d = tok.decode(ids, skip_special_tokens=False)
            if d != prefix + ds:
                plain[str(i)] = d
        with open(os.path.join(OUT, name + ".ids.bin"), "wb") as f:
            f.write(blob)
        with open(os.path.join(OUT, name + ".decoded.json"), "w", encoding="utf-8") as f:
            json.dump({"prefix": prefix, "skip": skipped, "plain": plain}, f, ensure_ascii=False,
                      separators=(",", ":"), sort_keys=True)
        print("%-7s vocab %5d  %7d ids  prefix %r  %4d skip-decode differences  %4d plain-decode differences"
              % (name, tok.get_vocab_size(), total, prefix, len(skipped), len(plain)))


if __name__ == "__main__":
    main()
