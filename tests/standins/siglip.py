"""SigLIP 2 stand-ins: tiny random `SiglipModel`s with the real checkpoints' interface, in a Hugging Face hub cache.

Each is written under a real model id, so that `AutoModel`, `AutoProcessor` and
`pipeline("zero-shot-image-classification")` find it with `HF_HUB_OFFLINE=1` exactly as they would find the
downloaded checkpoint: `google/siglip2-so400m-patch14-384` (the lab's model, installed for every test session) and
`google/siglip2-base-patch16-224` (the exercises' smaller model, installed where a test asks for it). What a stand-in
shares with the real one (what the notebook and tests rely on):

- `model_type` "siglip", the real input size and patch size (384 / 14, or 224 / 16), a text tower with 64
  positions, `logit_scale` and `logit_bias`;
- a sub-word tokenizer saved as the real one is (`tokenizer.json` with `tokenizer_class` "GemmaTokenizer"): a BPE
  with byte fallback, trained here with the `tokenizers` library on the lab's prompts and labels plus some text,
  with Gemma's special tokens (`<pad>`=0, `<eos>`=1, `<bos>`=2, `<unk>`=3). Like the real one it is case-sensitive,
  adds `<eos>` after the text but no `<bos>`, keeps `<eos>` last when truncating to 64 tokens, pads on the right,
  returns `input_ids` only (no attention mask: SigLIP was trained without one) and carries no `model_max_length`,
  so padding to 64 tokens happens only when asked for (`padding="max_length", max_length=64`);
- a `SiglipImageProcessor` at the real size, bilinear, mean = std = 0.5.

Everything else is tiny (hidden size 32, one layer per tower, a few hundred tokens) and random.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from . import MARKER, hub_snapshot

MODEL_ID = "google/siglip2-so400m-patch14-384"
BASE_ID = "google/siglip2-base-patch16-224"
GEOMETRY = {MODEL_ID: (384, 14), BASE_ID: (224, 16)}  # (image size, patch size) of the real checkpoints
TEXT_POSITIONS = 64
HIDDEN = 32
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")  # Gemma's ids 0..4
CLASS_SETS = Path(__file__).resolve().parents[2] / "labels" / "zero_shot_sets.json"

# Text for the tokenizer's training: caption-like sentences around the lab's labels. Words seen once stay split
# into pieces, so labels and prompts are tokenised into sub-words, as with the real 256k-token vocabulary.
CORPUS = """\
a photo of a cat. a photo of a dog. a photo of a horse. a photo of a human. a photo of a person.
a photo taken in spring. a photo taken in summer. a photo taken in autumn. a photo taken in winter.
a photo of a happy face. a photo of a sad face. a photo of an angry face. a photo of a scared face.
this is a photo of a cat. this is a photo of a dog. this is a photo of the sea. this is a photo of snow.
a kitten playing with a ball of yarn. a german shepherd standing on grass. a polar bear walking on snow.
horses and a foal on a green hill. a mariachi band playing guitars and trumpets. an astronaut in an orange suit.
an igloo under a blue sky. a twig of pink apple blossom. a person smiling at the camera. a landscape with trees.
a musical instrument on a table. a pet sleeping on a sofa. two dogs running on a beach in the summer sun.
"""


def snapshot_dir(hf_home: Path, model_id: str = MODEL_ID) -> Path:
    """Where the snapshot of `model_id` lies in the hub cache under `hf_home` (read from refs/main)."""
    repo = Path(hf_home) / "hub" / ("models--" + model_id.replace("/", "--"))
    commit = (repo / "refs" / "main").read_text().strip()
    return repo / "snapshots" / commit


def training_text() -> list[str]:
    """The tokenizer's training sentences: the corpus above and every label of the lab's class sets."""
    labels = [label for labels in json.loads(CLASS_SETS.read_text(encoding="utf-8")).values() for label in labels]
    return CORPUS.split("\n") + labels


def _tokenizer():
    """A Gemma-style BPE tokenizer (byte fallback, spaces as "\u2581", no prefix space) trained on training_text()."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import GemmaTokenizer

    bpe = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    bpe.normalizer = normalizers.Replace(" ", "\u2581")
    bpe.pre_tokenizer = pre_tokenizers.Split("\u2581", behavior="merged_with_next")  # merges stay inside words
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        min_frequency=2,
        special_tokens=[*SPECIAL_TOKENS, *(f"<0x{byte:02X}>" for byte in range(256))],  # byte fallback, as Gemma
        initial_alphabet=[chr(c) for c in range(33, 127)] + ["\u2581"],
        show_progress=False,
    )
    bpe.train_from_iterator(training_text(), trainer)
    trained = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    # GemmaTokenizer rebuilds Gemma's normalizer and decoder around this vocabulary, as it does for the real files.
    return GemmaTokenizer(
        vocab=trained["vocab"],
        merges=merges,
        add_bos_token=False,
        add_eos_token=True,
        padding_side="right",
        model_input_names=["input_ids"],
    )


def _model(vocab_size: int, image_size: int, patch_size: int):
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
        vision_config=dict(common, image_size=image_size, patch_size=patch_size),
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
        # from 0 and 1 so that the plots show something. The bias is not 0, so that code which forgets it gives
        # different numbers, and not the real checkpoints' strongly negative value, which no test relies on.
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


def install_model(hf_home: Path, model_id: str = MODEL_ID) -> Path:
    """Write the stand-in for `model_id` (a key of GEOMETRY) into the hub cache under `hf_home`; return its snapshot."""
    from transformers import SiglipImageProcessor

    image_size, patch_size = GEOMETRY[model_id]
    snapshot = hub_snapshot(hf_home, model_id)

    tokenizer = _tokenizer()
    image_processor = SiglipImageProcessor(
        size={"height": image_size, "width": image_size},
        resample=2,  # bilinear
        do_resize=True,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    model = _model(len(tokenizer), image_size, patch_size)
    model.save_pretrained(snapshot)
    # The real repositories predate processor_config.json: the image processor is in preprocessor_config.json and
    # the tokenizer files name the processor class. Write the same layout, so AutoProcessor takes the same path.
    image_processor.save_pretrained(snapshot)
    tokenizer.save_pretrained(snapshot)
    _edit_json(snapshot / "preprocessor_config.json", processor_class="SiglipProcessor")
    # The real tokenizer.json declares padding to a fixed 64 tokens with <pad>; transformers applies padding only
    # when a call asks for it, so this block changes nothing there, but the file mirrors the real one.
    _edit_json(
        snapshot / "tokenizer.json",
        padding={"strategy": {"Fixed": TEXT_POSITIONS}, "direction": "Right", "pad_to_multiple_of": None,
                 "pad_id": 0, "pad_type_id": 0, "pad_token": "<pad>"},
    )
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
        f"Stand-in for {model_id}: a tiny SigLIP with random weights, written by the tests. Not the real model.\n"
    )
    return snapshot


def install(root: Path, model_ids: tuple[str, ...] = (MODEL_ID,)) -> dict[str, str]:
    """Write the stand-ins into the hub cache under <root>/huggingface; return {"HF_HOME": ..., "HF_HUB_OFFLINE": "1"}."""
    hf_home = Path(root) / "huggingface"
    for model_id in model_ids:
        install_model(hf_home, model_id)
    return {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
