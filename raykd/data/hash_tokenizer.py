"""A dependency-free stand-in tokenizer (words hashed into ids) for tests, benchmarks and smoke runs."""
from __future__ import annotations

import zlib

import numpy as np


class HashTokenizer:
    """Picklable `list[str] -> {"input_ids", "attention_mask"}: int64 [n, length]`.

    Lower-cased whitespace words map to 1 + crc32(word) % (vocab_size - 1); 0 is padding; longer
    texts are truncated to `length` words.
    """

    def __init__(self, vocab_size: int = 1000, length: int = 16):
        self.vocab_size, self.length = vocab_size, length

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        ids = np.zeros((len(texts), self.length), dtype=np.int64)
        for i, text in enumerate(texts):
            words = [1 + zlib.crc32(w.encode()) % (self.vocab_size - 1) for w in text.lower().split()]
            ids[i, : min(len(words), self.length)] = words[: self.length]
        return {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}


hash_tokenize = HashTokenizer()
