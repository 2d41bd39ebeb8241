"""SigLIP 2 stand-in: a tiny random `SiglipModel` with the real checkpoint's interface, in a Hugging Face hub cache.

It is written under the real model id, `google/siglip2-so400m-patch14-384`, so that `AutoModel`, `AutoProcessor`
and `pipeline("zero-shot-image-classification")` find it with `HF_HUB_OFFLINE=1` exactly as they would find the
downloaded checkpoint. What it shares with the real one (what the notebook and tests rely on):

- `model_type` "siglip", 384 x 384 input, patch 14, a text tower with 64 positions, `logit_scale` and `logit_bias`;
- a Gemma-style tokenizer (`tokenizer_class` "GemmaTokenizer": `<pad>`=0, `<eos>`=1, `<bos>`=2, `<unk>`=3) that,
  like the real `tokenizer_config.json`, adds `<eos>` but no `<bos>`, pads on the right, returns `input_ids` only
  (no attention mask: SigLIP was trained without one) and carries no `model_max_length`, so padding to 64 tokens
  happens only when asked for (`padding="max_length", max_length=64`, as the notebook and the pipeline do);
- a `SiglipImageProcessor` at 384 x 384, bilinear, mean = std = 0.5.

Everything else is tiny (hidden size 32, one layer per tower, a character-level vocabulary) and random.
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from pathlib import Path

from . import MARKER

MODEL_ID = "google/siglip2-so400m-patch14-384"
IMAGE_SIZE = 384
PATCH_SIZE = 14
TEXT_POSITIONS = 64
HIDDEN = 32
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")


def snapshot_dir(hf_home: Path, model_id: str = MODEL_ID) -> Path:
    """Where the snapshot of `model_id` lies in the hub cache under `hf_home` (read from refs/main)."""
    repo = Path(hf_home) / "hub" / ("models--" + model_id.replace("/", "--"))
    commit = (repo / "refs" / "main").read_text().strip()
    return repo / "snapshots" / commit


def _vocab() -> dict[str, int]:
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for byte in range(256):  # byte fallback, as in Gemma: any character still encodes
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for char in string.ascii_letters + string.digits + string.punctuation + "\u2581":
        vocab.setdefault(char, len(vocab))
    return vocab


def _tokenizer():
    from transformers import GemmaTokenizer

    return GemmaTokenizer(
        vocab=_vocab(),
        merges=[],
        add_bos_token=False,
        add_eos_token=True,
        padding_side="right",
        model_input_names=["input_ids"],
    )


def _model(vocab_size: int):
    import torch
    from transformers import SiglipConfig, SiglipModel

    common = dict(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=1, num_attention_heads=2)
    config = SiglipConfig(
        text_config=dict(
            common,
            vocab_size=vocab_size,
            max_position_embeddings=TEXT_POSITIONS,
            projection_size=HIDDEN,
            # the tokenizer's ids; SiglipTextConfig's defaults (CLIP's 49406/49407) lie outside this tiny vocabulary
            pad_token_id=0,
            eos_token_id=1,
            bos_token_id=2,
        ),
        vision_config=dict(common, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE),
    )
    torch.manual_seed(0)
    model = SiglipModel(config).eval()
    with torch.no_grad():
        # The text tower pools the last position, a <pad> when padded to 64 (no attention mask, as in training).
        # With random weights that pad's state barely depends on the words, so every label would score the same and
        # a test could not tell labels apart. A zero <pad> embedding and no position embeddings make the pooled
        # state a function of the prompt's tokens, so labels get different scores (still meaningless ones).
        model.text_model.embeddings.token_embedding.weight[0].zero_()
        model.text_model.embeddings.position_embedding.weight.zero_()
        # Random features have cosine similarities within about +-0.5; this scale and bias keep the sigmoid away
        # from 0 and 1 so that the plots show something (the real checkpoint's are near 110 and -16). The bias is
        # not 0, so that code which forgets it gives different numbers.
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-1.0)
    return model


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def install(root: Path) -> dict[str, str]:
    """Write the stand-in into the hub cache under <root>/huggingface; return {"HF_HOME": ..., "HF_HUB_OFFLINE": "1"}."""
    from transformers import SiglipImageProcessor

    hf_home = Path(root) / "huggingface"
    repo = hf_home / "hub" / ("models--" + MODEL_ID.replace("/", "--"))
    commit = hashlib.sha1(f"cvkit stand-in for {MODEL_ID}".encode()).hexdigest()  # any 40-hex id will do
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)

    tokenizer = _tokenizer()
    image_processor = SiglipImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        resample=2,  # bilinear
        do_resize=True,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    model = _model(vocab_size=len(tokenizer))
    model.save_pretrained(snapshot)
    # The real repository predates processor_config.json: its image processor is in preprocessor_config.json and its
    # tokenizer files name the processor class. Write the same layout, so AutoProcessor takes the same path.
    image_processor.save_pretrained(snapshot)
    tokenizer.save_pretrained(snapshot)
    _edit_json(snapshot / "preprocessor_config.json", processor_class="SiglipProcessor")

    # The real tokenizer_config.json names GemmaTokenizer, says do_lower_case (which that class ignores: lower-case
    # the text yourself) and has no usable model_max_length: mirror that.
    _edit_json(
        snapshot / "tokenizer_config.json",
        tokenizer_class="GemmaTokenizer",
        do_lower_case=True,
        add_bos_token=False,
        add_eos_token=True,
        padding_side="right",
        model_input_names=["input_ids"],
        model_max_length=None,
        processor_class="SiglipProcessor",
    )
    (snapshot / MARKER).write_text(
        f"Stand-in for {MODEL_ID}: a tiny SigLIP with random weights, written by the tests. Not the real model.\n"
    )
    return {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
