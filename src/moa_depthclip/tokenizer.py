"""A tiny but real CLIP tokenizer, for random initialisation and tests.

The real CLIP vocabulary (49,408 tokens) ships with every Hugging Face CLIP folder but not with an
OpenAI ``.pt`` checkpoint, and it cannot be downloaded offline. When the text tower is randomly
initialised the vocabulary does not matter, only that prompts tokenise the way CLIP's do, so this
module writes a byte-level vocabulary in the exact on-disk format of CLIP (``vocab.json`` +
``merges.txt``): the 256 byte symbols, each also with the ``</w>`` end-of-word suffix, then
``<|startoftext|>`` and ``<|endoftext|>``. With no merges every word becomes one token per byte, the
last one marked ``</w>``; any text can be encoded, and ``<|endoftext|>`` has the largest id, as in
CLIP (OpenAI's text tower pools at the arg-max token id).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from transformers import CLIPTokenizer

START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"
END_OF_WORD = "</w>"
BYTE_LEVEL_VOCAB_SIZE = 2 * 256 + 2


def byte_unicode_symbols() -> list[str]:
    """The printable character that byte-level BPE uses for each byte value 0..255, in byte order.

    Printable Latin-1 bytes stand for themselves; the others (control characters, space, ...) are
    shifted to code points from 256 upwards so that every byte is a visible, non-whitespace symbol.
    """
    printable = set(range(ord("!"), ord("~") + 1))
    printable |= set(range(ord("¡"), ord("¬") + 1))
    printable |= set(range(ord("®"), ord("ÿ") + 1))
    symbols: list[str] = []
    shifted = 0
    for byte in range(256):
        if byte in printable:
            symbols.append(chr(byte))
        else:
            symbols.append(chr(256 + shifted))
            shifted += 1
    return symbols


def write_byte_level_clip_tokenizer_files(directory: str | os.PathLike[str]) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` of the byte-level CLIP tokenizer into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    symbols = byte_unicode_symbols()
    tokens = symbols + [symbol + END_OF_WORD for symbol in symbols] + [START_OF_TEXT, END_OF_TEXT]
    vocab = {token: index for index, token in enumerate(tokens)}
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return directory


def build_byte_level_clip_tokenizer(directory: str | os.PathLike[str]) -> CLIPTokenizer:
    """Write the byte-level CLIP tokenizer files into ``directory`` and load them with ``CLIPTokenizer``.

    The returned tokenizer holds its vocabulary in memory, so ``directory`` may be temporary. Use it
    with a text tower whose ``vocab_size`` is at least ``BYTE_LEVEL_VOCAB_SIZE`` (514).
    """
    directory = write_byte_level_clip_tokenizer_files(directory)
    return CLIPTokenizer(
        vocab=str(directory / "vocab.json"),
        merges=str(directory / "merges.txt"),
        model_max_length=77,
    )


def byte_level_clip_tokenizer() -> CLIPTokenizer:
    """The byte-level CLIP tokenizer, built in a temporary folder (the random-weights models use it)."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        return build_byte_level_clip_tokenizer(directory)
