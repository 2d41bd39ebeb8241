"""CLIP stand-in: a tiny random `CLIPModel` with the real checkpoint's interface, in a Hugging Face hub cache.

It is written under the real model id `openai/clip-vit-base-patch32`, so that `AutoModel`, `AutoProcessor` and
`pipeline("zero-shot-image-classification")` find it with `HF_HUB_OFFLINE=1` exactly as they would find the
downloaded checkpoint. The snapshot holds the files of the real repository's main branch that transformers reads:

- `config.json` with `model_type` "clip", 224 x 224 images in 32 x 32-pixel patches, a text tower with 77 positions,
  and the real text config's legacy token ids (`bos_token_id` 0, `eos_token_id` 2, `pad_token_id` 1). With
  `eos_token_id` 2 transformers pools the text at `input_ids.argmax(-1)`, the position of the highest token id, which
  is the end-of-text token because it is the last entry of the vocabulary: the same path the real model takes;
- `pytorch_model.bin` and no `model.safetensors`: the real main branch has PyTorch, TensorFlow and Flax weights but
  no safetensors file, so transformers looks for `model.safetensors`, does not find it, and loads the `.bin`;
- a byte-level BPE tokenizer saved as the real one is (`tokenizer.json`, `vocab.json`, `merges.txt`, and a
  `tokenizer_config.json` without `tokenizer_class`, so AutoTokenizer picks CLIPTokenizer from the model type),
  trained here with the `tokenizers` library on caption-like text and the lab's labels. Like the real one it
  lower-cases, marks word ends with `</w>`, adds `<|startoftext|>` and `<|endoftext|>` around the text, pads with
  `<|endoftext|>`, returns an attention mask and cuts at `model_max_length` 77;
- the real `preprocessor_config.json`: CLIP's image processor, shortest side to 224 (bicubic), centre crop to
  224 x 224, CLIP's own mean and standard deviation.

Everything else is tiny (hidden size 32, one layer per tower, a few hundred tokens) and random.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

from . import MARKER, hub_snapshot
from .siglip import training_text

MODEL_ID = "openai/clip-vit-base-patch32"
IMAGE_SIZE, PATCH_SIZE, TEXT_POSITIONS = 224, 32, 77  # the real checkpoint's
HIDDEN = 32
BOS, EOS = "<|startoftext|>", "<|endoftext|>"

# The real repository's preprocessor_config.json, as it is.
PREPROCESSOR_CONFIG = {
    "crop_size": 224,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 224,
}


def _special(content: str, legacy_type: bool = False) -> dict:
    token = {"content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": True}
    return {**token, "__type": "AddedToken"} if legacy_type else token


# The real repository's tokenizer_config.json (legacy format, no tokenizer_class) and special_tokens_map.json, as
# they are, key order included.
TOKENIZER_CONFIG = {
    "unk_token": _special(EOS, True),
    "bos_token": _special(BOS, True),
    "eos_token": _special(EOS, True),
    "pad_token": EOS,
    "add_prefix_space": False,
    "errors": "replace",
    "do_lower_case": True,
    "name_or_path": "./clip_ViT_B_32/",
    "model_max_length": TEXT_POSITIONS,
}
SPECIAL_TOKENS_MAP = {"bos_token": _special(BOS), "eos_token": _special(EOS), "unk_token": _special(EOS),
                      "pad_token": EOS}


def snapshot_dir(hf_home: Path) -> Path:
    """Where the stand-in's snapshot lies in the hub cache under `hf_home` (read from refs/main)."""
    repo = Path(hf_home) / "hub" / ("models--" + MODEL_ID.replace("/", "--"))
    return repo / "snapshots" / (repo / "refs" / "main").read_text().strip()


def _words() -> Counter:
    """The training text cut into words as CLIP's tokenizer cuts it (lower case, its word pattern, bytes shown as
    printable characters), each word a tuple of symbols whose last one carries the end-of-word mark `</w>`."""
    from tokenizers import Regex, normalizers, pre_tokenizers

    normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    splitter = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False),
    ])
    words: Counter = Counter()
    for line in training_text():
        for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(line)):
            words[(*word[:-1], word[-1] + "</w>")] += 1
    return words


def _vocab_and_merges(max_merges: int = 400) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A CLIP-style byte-level BPE learned from the lab's text: every byte alone and at a word's end, the merged
    symbols in merge order, then <|startoftext|> and <|endoftext|> as the two highest ids (as 49406 and 49407 are in
    the real vocabulary). Learned here in plain Python, ties broken alphabetically, so it is the same every time."""
    from tokenizers import pre_tokenizers

    words, merges = _words(), []
    while len(merges) < max_merges:
        pairs: Counter = Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs or max(pairs.values()) < 2:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        merged: Counter = Counter()
        for word, count in words.items():
            symbols, i = [], 0
            while i < len(word):
                if word[i:i + 2] == best:
                    symbols.append(best[0] + best[1])
                    i += 2
                else:
                    symbols.append(word[i])
                    i += 1
            merged[tuple(symbols)] += count
        words = merged
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = [*alphabet, *(c + "</w>" for c in alphabet)]  # no byte is ever unknown, as in the real vocabulary
    tokens += list(dict.fromkeys(a + b for a, b in merges if a + b not in set(tokens)))
    tokens += [BOS, EOS]
    return {token: i for i, token in enumerate(tokens)}, merges


def _model(vocab_size: int):
    import torch
    from transformers import CLIPConfig, CLIPModel

    common = dict(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=1, num_attention_heads=2)
    config = CLIPConfig(
        # the real config.json's legacy ids: eos_token_id 2 makes transformers pool at the highest token id
        text_config=dict(common, vocab_size=vocab_size, max_position_embeddings=TEXT_POSITIONS,
                         bos_token_id=0, eos_token_id=2, pad_token_id=1),
        vision_config=dict(common, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE),
        projection_dim=HIDDEN,
    )
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    with torch.no_grad():
        # The real checkpoint's learned scale is far larger; 10 keeps the softmax of random features readable.
        model.logit_scale.fill_(math.log(10.0))
    return model


def install_model(hf_home: Path) -> Path:
    """Write the stand-in into the hub cache under `hf_home`; return its snapshot folder."""
    import torch

    snapshot = hub_snapshot(hf_home, MODEL_ID)

    from transformers import CLIPTokenizer

    vocab, merges = _vocab_and_merges()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=TEXT_POSITIONS)
    model = _model(len(vocab))
    model.config.save_pretrained(snapshot)
    torch.save(model.state_dict(), snapshot / "pytorch_model.bin")  # what the real main branch holds
    tokenizer.save_pretrained(snapshot)
    (snapshot / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (snapshot / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    (snapshot / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG), encoding="utf-8")
    (snapshot / "special_tokens_map.json").write_text(json.dumps(SPECIAL_TOKENS_MAP), encoding="utf-8")
    (snapshot / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2) + "\n",
                                                       encoding="utf-8")
    (snapshot / MARKER).write_text(
        f"Stand-in for {MODEL_ID}: a tiny CLIP with random weights, written by the tests. Not the real model.\n"
    )
    return snapshot


def install(root: Path) -> dict[str, str]:
    """Write the stand-in into the hub cache under <root>/huggingface; return {"HF_HOME": ..., "HF_HUB_OFFLINE": "1"}."""
    hf_home = Path(root) / "huggingface"
    install_model(hf_home)
    return {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
