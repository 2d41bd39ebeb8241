"""Lab 3: the SigLIP 2 and CLIP stand-ins, cvkit.zeroshot's plumbing and exercise checks, the notebook's scoring and
its run with the smaller model.

The stand-ins are built here into a temporary folder, independent of the root conftest. Most tests load them from
their snapshot folders by path, which needs no hub settings. Loading by model id runs in a child process (the
notebook's kernel, or a script): huggingface_hub reads HF_HOME and HF_HUB_OFFLINE when it is first imported, so
changing them in this process would come too late.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import cvkit
import numpy as np
import pytest
import torch
from cvkit import KitError
from PIL import Image
from standins import MARKER, clip, siglip

pytestmark = pytest.mark.standins("siglip", "clip")  # the stand-in models its tests load

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03_zero_shot_classification.ipynb"
SEASONS = ["a photo taken in spring.", "a photo taken in summer.", "a photo taken in autumn.", "a photo taken in winter."]
SUBJECTS = ["human", "cat", "dog", "horse"]
SUBJECT_TEMPLATE = "a photo of a {}."


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("zeroshot-standins")
    env = siglip.install(root, (siglip.MODEL_ID, siglip.BASE_ID))
    assert clip.install(root) == env and env["HF_HUB_OFFLINE"] == "1"
    return Path(env["HF_HOME"])


@pytest.fixture(scope="module")
def snapshot(hf_home) -> Path:
    return siglip.snapshot_dir(hf_home)


def _model_and_processor(snapshot: Path) -> tuple:
    """The model (float32, eval mode) and processor that the stand-in snapshot holds."""
    from transformers import AutoModel, AutoProcessor

    return AutoModel.from_pretrained(snapshot, dtype=torch.float32).eval(), AutoProcessor.from_pretrained(snapshot)


@pytest.fixture(scope="module")
def model_and_processor(snapshot):
    return _model_and_processor(snapshot)


@pytest.fixture(scope="module")
def tokenizer(model_and_processor):
    return model_and_processor[1].tokenizer


@pytest.fixture(scope="module")
def clip_snapshot(hf_home) -> Path:
    return clip.snapshot_dir(hf_home)


@pytest.fixture(scope="module")
def clip_and_processor(clip_snapshot):
    return _model_and_processor(clip_snapshot)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    sizes = [(320, 240), (200, 300), (384, 384), (500, 280), (257, 199)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


def siglip_logits(model, image_vectors, text_vectors):
    """The notebook's scoring, written out again: e^t * cosine + b."""
    scale, bias = model.logit_scale.detach().exp(), model.logit_bias.detach()
    image_vectors = image_vectors / image_vectors.norm(dim=-1, keepdim=True)
    text_vectors = text_vectors / text_vectors.norm(dim=-1, keepdim=True)
    return scale * image_vectors @ text_vectors.T + bias


class TowerSpy:
    """Wrap a tower's forward and record the batch size of each call."""

    def __init__(self, module, key):
        self.rows: list[int] = []
        self._module, self._forward = module, module.forward

        def forward(*args, **kwargs):
            self.rows.append(kwargs[key].shape[0] if key in kwargs else args[0].shape[0])
            return self._forward(*args, **kwargs)

        module.forward = forward

    def restore(self):
        self._module.forward = self._forward


@pytest.fixture
def spies(model_and_processor):
    model, _ = model_and_processor
    image_spy = TowerSpy(model.vision_model, "pixel_values")
    text_spy = TowerSpy(model.text_model, "input_ids")
    yield image_spy, text_spy
    image_spy.restore()
    text_spy.restore()


# ------------------------------------------------------------------ the stand-ins


@pytest.mark.parametrize("model_id", [siglip.MODEL_ID, siglip.BASE_ID])
def test_standin_is_written_in_the_hub_cache_layout_under_the_real_model_id(hf_home, model_id):
    repo = hf_home / "hub" / ("models--" + model_id.replace("/", "--"))
    commit = (repo / "refs" / "main").read_text()
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    snapshot = siglip.snapshot_dir(hf_home, model_id)
    assert snapshot == repo / "snapshots" / commit and (snapshot / MARKER).is_file()
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in snapshot.iterdir()
    }


@pytest.mark.parametrize("model_id, size, patch", [(siglip.MODEL_ID, 384, 14), (siglip.BASE_ID, 224, 16)])
def test_standin_configs_mirror_the_real_checkpoint(hf_home, model_id, size, patch):
    snapshot = siglip.snapshot_dir(hf_home, model_id)
    config = json.loads((snapshot / "config.json").read_text())
    assert config["model_type"] == "siglip"
    assert (config["vision_config"]["image_size"], config["vision_config"]["patch_size"]) == (size, patch)
    assert config["text_config"]["max_position_embeddings"] == 64
    pre = json.loads((snapshot / "preprocessor_config.json").read_text())
    assert pre["image_processor_type"] == "SiglipImageProcessor" and pre["size"] == {"height": size, "width": size}
    assert pre["image_mean"] == pre["image_std"] == [0.5, 0.5, 0.5]
    tok = json.loads((snapshot / "tokenizer_config.json").read_text())
    assert tok["tokenizer_class"] == "GemmaTokenizer"
    assert (tok["add_bos_token"], tok["add_eos_token"], tok["padding_side"]) == (False, True, "right")
    assert tok["model_input_names"] == ["input_ids"] and "model_max_length" not in tok


def test_standin_tokenizer_json_is_a_byte_fallback_bpe_with_gemmas_special_tokens(snapshot):
    data = json.loads((snapshot / "tokenizer.json").read_text(encoding="utf-8"))
    assert data["model"]["type"] == "BPE" and data["model"]["byte_fallback"] is True and data["model"]["merges"]
    vocab = data["model"]["vocab"]
    assert [vocab[t] for t in ("<pad>", "<eos>", "<bos>", "<unk>")] == [0, 1, 2, 3] and "<0x41>" in vocab
    single = data["post_processor"]["single"]
    assert [next(iter(item)) for item in single] == ["Sequence", "SpecialToken"] and single[1]["SpecialToken"]["id"] == "<eos>"
    assert data["padding"]["strategy"] == {"Fixed": 64} and data["padding"]["pad_id"] == 0


def test_standin_loads_by_model_id_offline_through_automodel_autoprocessor_and_pipeline(hf_home, tmp_path):
    script = textwrap.dedent(
        """
        import sys
        import torch
        from transformers import AutoModel, AutoProcessor, pipeline
        from PIL import Image

        for model_id in sys.argv[1:]:
            model = AutoModel.from_pretrained(model_id, dtype=torch.float32)
            processor = AutoProcessor.from_pretrained(model_id)
            classifier = pipeline("zero-shot-image-classification", model=model_id)
            result = classifier(Image.new("RGB", (64, 48), "red"), candidate_labels=["cat", "dog"])
            print(type(model).__name__, type(processor).__name__, type(processor.tokenizer).__name__,
                  type(processor.image_processor).__name__, model.config.vision_config.image_size, len(result))
        """
    )
    net_log = tmp_path / "network.log"
    env = dict(
        os.environ,
        HF_HOME=str(hf_home),
        HF_HUB_OFFLINE="1",
        CVKIT_NET_LOG=str(net_log),
        PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "nonet"), os.environ.get("PYTHONPATH", "")]),
    )
    env.pop("HF_HUB_CACHE", None)
    done = subprocess.run([sys.executable, "-c", script, siglip.MODEL_ID, siglip.BASE_ID, clip.MODEL_ID], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = ["SiglipModel", "SiglipProcessor", "GemmaTokenizer", "SiglipImageProcessor"]
    clip_loaded = ["CLIPModel", "CLIPProcessor", "CLIPTokenizer", "CLIPImageProcessor"]
    assert done.stdout.split() == [*loaded, "384", "2", *loaded, "224", "2", *clip_loaded, "224", "2"]
    assert not net_log.exists() or not net_log.read_text().strip(), net_log.read_text()


def test_standin_tokenizer_cuts_rare_words_into_sub_words(tokenizer):
    pieces = tokenizer.tokenize("a photo of a komodo dragon.")
    assert "▁photo" in pieces  # a frequent word of the training text is one token ...
    assert len(pieces) > len("a photo of a komodo dragon.".split()) + 2  # ... a rare one several


def test_standin_tokenizer_is_case_sensitive_like_the_real_one(tokenizer):
    assert tokenizer("A Photo Of A Cat.")["input_ids"] != tokenizer("a photo of a cat.")["input_ids"]


def test_standin_tokenizer_pads_to_64_only_when_asked_like_the_real_one(tokenizer):
    ids = tokenizer(["a photo of a cat."], padding="max_length", return_tensors="pt")["input_ids"]
    assert ids.shape[1] < 64  # no model_max_length in the config: padding="max_length" alone does not reach 64


def test_standin_tokenizer_is_trained_the_same_every_time():
    assert siglip._tokenizer().get_vocab() == siglip._tokenizer().get_vocab()


# ------------------------------------------------------------------ tokenising


def test_tokenize_prompts_pads_to_64_tokens_with_eos_then_pad_and_no_attention_mask(tokenizer):
    tokens = cvkit.tokenize_prompts(tokenizer, SEASONS)
    assert list(tokens.keys()) == ["input_ids"]  # no attention mask, as SigLIP was trained
    assert tokens["input_ids"].shape == (4, 64)
    for row in tokens["input_ids"].tolist():
        end = row.index(tokenizer.eos_token_id)
        assert 0 < end < 63 and row[0] != tokenizer.bos_token_id and set(row[end + 1 :]) == {tokenizer.pad_token_id}


def test_tokenize_prompts_lower_cases_the_text(tokenizer):
    upper = cvkit.tokenize_prompts(tokenizer, [p.upper() for p in SEASONS])["input_ids"]
    assert torch.equal(upper, cvkit.tokenize_prompts(tokenizer, SEASONS)["input_ids"])


def test_tokenize_prompts_cuts_a_long_prompt_to_64_tokens_ending_with_eos(tokenizer):
    long = "a photo of " + " and ".join(["a cat"] * 60) + "."
    ids = cvkit.tokenize_prompts(tokenizer, [long])["input_ids"]
    assert ids.shape == (1, 64) and ids[0, -1].item() == tokenizer.eos_token_id


@pytest.mark.parametrize("prompts", [[], "a photo of a cat.", ["a photo of a cat.", " "], [None]],
                         ids=["no prompts", "a string, not a list", "blank prompt", "not a string"])
def test_tokenize_prompts_rejects_unusable_input_with_a_kit_error(tokenizer, prompts):
    with pytest.raises(KitError):
        cvkit.tokenize_prompts(tokenizer, prompts)


def test_padding_to_another_length_changes_the_text_features(model_and_processor):
    model, processor = model_and_processor
    with torch.inference_mode():
        short = model.get_text_features(**processor.tokenizer(SEASONS, padding=True, return_tensors="pt")).pooler_output
    assert not torch.allclose(short, cvkit.text_features(model, processor, SEASONS), atol=1e-3)


# --------------------------------------------------------------------- features


def test_image_features_are_the_image_towers_output_one_row_per_image_in_float32_on_the_cpu(model_and_processor, images):
    model, processor = model_and_processor
    feats = cvkit.image_features(model, processor, images, "cpu", torch.float32, batch_size=2)
    pixels = processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        direct = model.get_image_features(pixel_values=pixels).pooler_output
    assert feats.shape == (len(images), model.config.vision_config.hidden_size)
    assert feats.dtype == torch.float32 and feats.device.type == "cpu"
    assert torch.allclose(feats, direct, atol=1e-5)  # raw vectors: the notebook normalises them itself


def test_image_features_do_not_depend_on_the_batch_size(model_and_processor, images):
    model, processor = model_and_processor
    one = cvkit.image_features(model, processor, images, "cpu", torch.float32, batch_size=1)
    many = cvkit.image_features(model, processor, images, "cpu", torch.float32, batch_size=8)
    assert torch.allclose(one, many, atol=1e-5)


def test_image_features_send_each_image_through_the_image_tower_once_in_batches(model_and_processor, images, spies):
    model, processor = model_and_processor
    image_spy, text_spy = spies
    cvkit.image_features(model, processor, images, "cpu", torch.float32, batch_size=2)
    assert image_spy.rows == [2, 2, 1] and text_spy.rows == []


@pytest.mark.parametrize("images_given, batch_size", [([], 8), (None, 0)], ids=["no images", "batch size 0"])
def test_image_features_refuse_no_images_and_a_batch_size_below_one(model_and_processor, images, images_given, batch_size):
    model, processor = model_and_processor
    with pytest.raises(KitError):
        cvkit.image_features(model, processor, images if images_given is None else images_given, "cpu", torch.float32,
                             batch_size=batch_size)


def test_text_features_are_the_text_towers_output_for_64_token_prompts(model_and_processor):
    model, processor = model_and_processor
    feats = cvkit.text_features(model, processor, SEASONS)
    with torch.inference_mode():
        direct = model.get_text_features(**cvkit.tokenize_prompts(processor, SEASONS)).pooler_output
    assert feats.shape == (4, model.config.text_config.projection_size) and feats.dtype == torch.float32
    assert torch.allclose(feats, direct, atol=1e-6)


def test_the_text_towers_pooler_output_is_what_text_features_returns(model_and_processor):
    model, processor = model_and_processor  # Exercise 2's hint: model.text_model(...).pooler_output, in every version
    with torch.inference_mode():
        pooled = model.text_model(**cvkit.tokenize_prompts(processor, SEASONS)).pooler_output
    assert torch.allclose(pooled, cvkit.text_features(model, processor, SEASONS), atol=1e-6)


def test_text_features_send_all_prompts_through_the_text_tower_in_one_call(model_and_processor, spies):
    model, processor = model_and_processor
    image_spy, text_spy = spies
    cvkit.text_features(model, processor, SEASONS)
    assert text_spy.rows == [4] and image_spy.rows == []


# ----------------------------------------------- the notebook's scoring, checked


def test_hand_written_scoring_equals_the_models_logits_per_image(model_and_processor, images):
    model, processor = model_and_processor
    inputs = processor(text=SEASONS, images=images, padding="max_length", max_length=64, return_tensors="pt")
    with torch.inference_mode():
        expected = model(**inputs).logits_per_image
    by_hand = siglip_logits(model, cvkit.image_features(model, processor, images, "cpu", torch.float32),
                            cvkit.text_features(model, processor, SEASONS))
    assert by_hand.shape == expected.shape == (len(images), len(SEASONS))
    assert expected.std() > 0.05  # the stand-in tells prompts and images apart, so the comparison means something
    assert torch.allclose(by_hand, expected, atol=1e-4)


def test_hand_written_probabilities_agree_with_the_pipeline(model_and_processor, images):
    from transformers import pipeline

    model, processor = model_and_processor
    classifier = pipeline("zero-shot-image-classification", model=model, tokenizer=processor.tokenizer,
                          image_processor=processor.image_processor, device="cpu")
    prompts = [SUBJECT_TEMPLATE.format(label) for label in SUBJECTS]
    probs = siglip_logits(model, cvkit.image_features(model, processor, images, "cpu", torch.float32),
                          cvkit.text_features(model, processor, prompts)).sigmoid()
    for i in (0, 3):
        answer = classifier(images[i], candidate_labels=SUBJECTS, hypothesis_template=SUBJECT_TEMPLATE)
        scores = {item["label"]: item["score"] for item in answer}
        assert torch.allclose(torch.tensor([scores[label] for label in SUBJECTS]), probs[i], atol=1e-5)


def test_pipeline_pads_siglip_prompts_to_64_tokens(model_and_processor, images):
    from transformers import pipeline

    model, processor = model_and_processor
    classifier = pipeline("zero-shot-image-classification", model=model, tokenizer=processor.tokenizer,
                          image_processor=processor.image_processor)
    prepared = classifier.preprocess(images[0], candidate_labels=SUBJECTS)
    assert prepared["text_inputs"][0]["input_ids"].shape == (len(SUBJECTS), 64)


# ------------------------------------------------------------- the CLIP stand-in


def test_clip_standin_has_the_real_repositorys_files_with_pytorch_weights_and_no_safetensors(hf_home, clip_snapshot):
    repo = hf_home / "hub" / "models--openai--clip-vit-base-patch32"
    assert clip_snapshot == repo / "snapshots" / (repo / "refs" / "main").read_text() and (clip_snapshot / MARKER).is_file()
    files = {p.name for p in clip_snapshot.iterdir()}
    assert {"config.json", "pytorch_model.bin", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
            "vocab.json", "merges.txt", "special_tokens_map.json"} <= files
    assert "model.safetensors" not in files  # as on the real main branch: transformers falls back to the .bin


def test_clip_standin_config_mirrors_the_real_checkpoint(clip_snapshot):
    config = json.loads((clip_snapshot / "config.json").read_text())
    assert config["model_type"] == "clip"
    assert (config["vision_config"]["image_size"], config["vision_config"]["patch_size"]) == (224, 32)
    text = config["text_config"]
    assert text["max_position_embeddings"] == 77
    assert (text["bos_token_id"], text["eos_token_id"], text["pad_token_id"]) == (0, 2, 1)  # the real legacy ids


def test_clip_standin_preprocessing_and_tokenizer_configs_are_the_real_ones(clip_snapshot):
    assert json.loads((clip_snapshot / "preprocessor_config.json").read_text()) == clip.PREPROCESSOR_CONFIG
    tok = json.loads((clip_snapshot / "tokenizer_config.json").read_text())
    assert "tokenizer_class" not in tok and tok["model_max_length"] == 77 and tok["pad_token"] == "<|endoftext|>"


def test_clip_standin_image_processor_crops_the_centre_to_224(clip_and_processor, images):
    _, processor = clip_and_processor
    pixels = processor.image_processor(images=images[:2], return_tensors="pt")["pixel_values"]
    assert pixels.shape == (2, 3, 224, 224)
    assert processor.image_processor.do_center_crop and processor.image_processor.image_mean[0] == pytest.approx(0.4815, abs=1e-4)


def test_clip_standin_tokenizer_lower_cases_and_wraps_the_text_in_start_and_end_tokens(clip_and_processor):
    tokenizer = clip_and_processor[1].tokenizer
    ids = tokenizer("A Photo of a Komodo Dragon.")["input_ids"]
    assert ids == tokenizer("a photo of a komodo dragon.")["input_ids"]  # CLIP's tokenizer lower-cases by itself
    pieces = tokenizer.convert_ids_to_tokens(ids)
    assert pieces[0] == "<|startoftext|>" and pieces[-1] == "<|endoftext|>" and "photo</w>" in pieces
    assert len(pieces) > len("a photo of a komodo dragon.".split()) + 3  # rare words come in several pieces


def test_clip_standin_end_of_text_token_has_the_highest_id_as_in_the_real_vocabulary(clip_and_processor):
    tokenizer = clip_and_processor[1].tokenizer
    assert tokenizer.eos_token_id == max(tokenizer.get_vocab().values()) == tokenizer.pad_token_id
    assert tokenizer.bos_token_id == tokenizer.eos_token_id - 1


def test_clip_standin_tokenizer_pads_with_end_of_text_and_masks_the_padding(clip_and_processor):
    tokenizer = clip_and_processor[1].tokenizer
    batch = tokenizer(["a cat.", "a photo of a horse on grass."], padding=True, return_tensors="pt")
    short = batch["attention_mask"][0]
    assert 0 < short.sum() < len(short)
    assert set(batch["input_ids"][0][short == 0].tolist()) == {tokenizer.eos_token_id}


def test_clip_standin_is_trained_the_same_every_time():
    assert clip._vocab_and_merges() == clip._vocab_and_merges()


# ------------------------------------------------------------------ CLIP scoring


def test_text_features_pad_clip_prompts_to_the_longest_with_an_attention_mask(clip_and_processor, monkeypatch):
    model, processor = clip_and_processor
    seen = {}
    forward = model.text_model.forward

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return forward(*args, **kwargs)

    monkeypatch.setattr(model.text_model, "forward", spy)
    feats = cvkit.text_features(model, processor, SEASONS)
    longest = max(len(processor.tokenizer(p)["input_ids"]) for p in SEASONS)
    assert seen["input_ids"].shape == seen["attention_mask"].shape == (4, longest)
    assert feats.shape == (4, model.config.projection_dim) and feats.dtype == torch.float32


def test_clip_text_features_do_not_depend_on_the_padding_length(clip_and_processor):
    model, processor = clip_and_processor
    longer = processor.tokenizer(SEASONS, padding="max_length", max_length=77, return_tensors="pt")
    with torch.inference_mode():
        padded = model.get_text_features(**longer).pooler_output
    assert torch.allclose(cvkit.text_features(model, processor, SEASONS), padded, atol=1e-5)


def test_clip_text_features_change_with_the_words(clip_and_processor):
    model, processor = clip_and_processor
    feats = cvkit.text_features(model, processor, [SUBJECT_TEMPLATE.format(label) for label in SUBJECTS])
    assert (torch.cdist(feats, feats) + torch.eye(len(SUBJECTS))).min() > 1e-3  # the stand-in tells prompts apart


def clip_logits(model, image_vectors, text_vectors):
    """The notebook's CLIP scoring, written out again: e^t * cosine, no bias."""
    scale = model.logit_scale.detach().exp()
    return scale * (image_vectors / image_vectors.norm(dim=-1, keepdim=True)) @ (
        text_vectors / text_vectors.norm(dim=-1, keepdim=True)).T


def test_hand_written_clip_scoring_equals_clips_logits_per_image(clip_and_processor, images):
    model, processor = clip_and_processor
    inputs = processor(text=SEASONS, images=images, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = model(**inputs).logits_per_image
    by_hand = clip_logits(model, cvkit.image_features(model, processor, images, "cpu", torch.float32),
                          cvkit.text_features(model, processor, SEASONS))
    assert by_hand.shape == expected.shape == (len(images), len(SEASONS))
    assert expected.std() > 0.05
    assert torch.allclose(by_hand, expected, atol=1e-4)


def test_clip_softmax_by_hand_agrees_with_the_pipeline(clip_and_processor, images):
    from transformers import pipeline

    model, processor = clip_and_processor
    classifier = pipeline("zero-shot-image-classification", model=model, tokenizer=processor.tokenizer,
                          image_processor=processor.image_processor, device="cpu")
    probs = clip_logits(model, cvkit.image_features(model, processor, images, "cpu", torch.float32),
                        cvkit.text_features(model, processor, [SUBJECT_TEMPLATE.format(x) for x in SUBJECTS])).softmax(1)
    for i in (0, 3):
        answer = classifier(images[i], candidate_labels=SUBJECTS, hypothesis_template=SUBJECT_TEMPLATE)
        scores = {item["label"]: item["score"] for item in answer}
        assert torch.allclose(torch.tensor([scores[label] for label in SUBJECTS]), probs[i], atol=1e-5)


# -------------------------------------------------------------- exercise checks


@pytest.fixture(scope="module")
def towers(model_and_processor, images):
    """Image and text vectors of the SigLIP stand-in, as the lab computes its own, and the model."""
    model, processor = model_and_processor
    return (cvkit.image_features(model, processor, images, "cpu", torch.float32),
            cvkit.text_features(model, processor, SEASONS), model)


def _right_sigmoid_probs(image_vectors, text_vectors, logit_scale, logit_bias):
    """A correct answer to Exercise 1, written independently of the notebook's solution."""
    import torch.nn.functional as F

    cosine = F.normalize(image_vectors, dim=-1) @ F.normalize(text_vectors, dim=-1).T
    return torch.sigmoid(logit_scale.exp() * cosine + logit_bias)


SIGMOID_MISTAKES = {  # a wrong answer to Exercise 1 -> a word of the hint the check must give
    "softmax": (lambda x, y, t, b: (t.exp() * (x / x.norm(dim=-1, keepdim=True)) @ (y / y.norm(dim=-1, keepdim=True)).T
                                    + b).softmax(dim=1), "softmax"),
    "logits": (lambda x, y, t, b: torch.logit(_right_sigmoid_probs(x, y, t, b)), "apply torch.sigmoid"),
    "no bias": (lambda x, y, t, b: _right_sigmoid_probs(x, y, t, torch.zeros(())), "logit_bias"),
    "t, not e^t": (lambda x, y, t, b: _right_sigmoid_probs(x, y, t.log(), b), "logit_scale.exp()"),
    "not normalised": (lambda x, y, t, b: torch.sigmoid(t.exp() * x @ y.T + b), "unit length"),
}


def test_check_sigmoid_scores_says_correct_for_a_right_function(capsys):
    assert cvkit.check_sigmoid_scores(_right_sigmoid_probs) is True
    assert capsys.readouterr().out == "Exercise 1: correct\n"


def test_check_sigmoid_scores_accepts_a_numpy_array_and_float32_rounding():
    assert cvkit.check_sigmoid_scores(lambda *args: _right_sigmoid_probs(*args).double().numpy() * (1 + 1e-5)) is True


@pytest.mark.parametrize("mistake", SIGMOID_MISTAKES)
def test_check_sigmoid_scores_names_the_mistake(capsys, mistake):
    function, hint = SIGMOID_MISTAKES[mistake]
    assert cvkit.check_sigmoid_scores(function) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 1: not yet - ") and hint in out and out.count("\n") == 1


def test_check_sigmoid_scores_says_not_yet_for_other_wrong_values_without_showing_the_solution(capsys):
    seen = {}

    def nearly(*args):
        seen["right"] = _right_sigmoid_probs(*args)
        return seen["right"] * 0.9

    assert cvkit.check_sigmoid_scores(nearly) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 1: not yet - the values differ")
    assert f"{seen['right'][0, 0].item():.3f}" not in out and f"{seen['right'][0, 0].item():.4f}" not in out


def test_check_sigmoid_scores_calls_the_function_on_inputs_the_lab_never_computes(towers):
    image_vectors, text_vectors, model = towers
    calls = []
    cvkit.check_sigmoid_scores(lambda *args: calls.append(args))
    (x, y, t, b), = calls
    assert x.shape[1] == y.shape[1] and x.shape[0] != y.shape[0]  # rows: images, columns: texts, never square
    assert x.shape[1] != image_vectors.shape[1]  # not the towers' vectors
    assert (t.item(), b.item()) != (model.logit_scale.item(), model.logit_bias.item())
    assert (x.norm(dim=-1) - 1).abs().min() > 0.1 and (y.norm(dim=-1) - 1).abs().min() > 0.1  # not unit length


def test_check_sigmoid_scores_says_not_yet_to_the_probabilities_of_other_vectors(towers, capsys):
    image_vectors, text_vectors, model = towers  # a function that answers with values computed beforehand, right or not
    fixed = _right_sigmoid_probs(image_vectors, text_vectors, model.logit_scale.detach(), model.logit_bias.detach())
    assert cvkit.check_sigmoid_scores(lambda *args: fixed) is False
    assert "from the function's arguments" in capsys.readouterr().out


def test_check_sigmoid_scores_says_not_yet_to_the_models_own_scale_and_bias(towers, capsys):
    _, _, model = towers  # siglip_logits in the lab uses the model's scale and bias, not the arguments
    t, b = model.logit_scale.detach(), model.logit_bias.detach()
    assert cvkit.check_sigmoid_scores(lambda x, y, *_: _right_sigmoid_probs(x, y, t, b)) is False
    assert "use the function's arguments" in capsys.readouterr().out


def _raises(*args):
    raise NotImplementedError("Exercise 1: replace this line with your solution")


@pytest.mark.parametrize("answer, says", [
    (None, "still None"), (torch.rand(3, 5), "give the function itself"),
    (_raises, "_raises raised NotImplementedError: Exercise 1: replace this line"),
    (lambda *args: None, "returned None"), (lambda *args: "0.5", "a tensor of numbers"),
    (lambda *args: torch.rand(4, 4), "not (3, 5)"),
    (lambda *args: torch.rand(5, 3), "rows are images"), (lambda *args: torch.full((3, 5), float("nan")), "NaN"),
], ids=["None", "a tensor, not a function", "raises", "returns None", "returns a string", "wrong shape", "transposed", "NaN"])
def test_check_sigmoid_scores_says_not_yet_without_raising_for_unusable_answers(capsys, answer, says):
    assert cvkit.check_sigmoid_scores(answer) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 1: not yet - ") and says in out and out.count("\n") == 1


def test_check_softmax_scores_says_correct_for_the_softmax_over_each_row(capsys):
    assert cvkit.check_softmax_scores(lambda logits: torch.softmax(logits, dim=1)) is True
    assert capsys.readouterr().out == "Exercise 4: correct\n"


@pytest.mark.parametrize("function, hint", [
    (lambda x: torch.softmax(x, dim=0), "dim=1"), (torch.sigmoid, "sigmoid of each cell"),
    (lambda x: torch.softmax(torch.sigmoid(x), dim=1), "not of the sigmoid"),
    (lambda x: torch.softmax(2 * x, dim=1), "differ"),
], ids=["over the images", "sigmoid", "softmax of probabilities", "other values"])
def test_check_softmax_scores_names_the_mistake(capsys, function, hint):
    assert cvkit.check_softmax_scores(function) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 4: not yet - ") and hint in out


def test_check_softmax_scores_calls_the_function_on_a_matrix_that_is_not_square():
    calls = []
    cvkit.check_softmax_scores(lambda logits: calls.append(logits))
    logits, = calls
    assert logits.ndim == 2 and logits.shape[0] != logits.shape[1]


def test_check_softmax_scores_says_not_yet_to_a_softmax_computed_beforehand(capsys):
    fixed = torch.softmax(torch.randn(3, 4), dim=1)  # as pasting a lab variable would
    assert cvkit.check_softmax_scores(lambda logits: fixed, exercise="4b") is False
    assert capsys.readouterr().out.startswith("Exercise 4b: not yet - for 3 images and 5 labels")


def test_check_softmax_scores_says_not_yet_for_a_missing_answer(capsys):
    assert cvkit.check_softmax_scores(None) is False
    assert capsys.readouterr().out.startswith("Exercise 4: not yet - your function is still None")


# ---------------------------------------------------------------------- plotting


def test_plot_heatmap_boxes_the_diagonal_and_checks_the_labels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots()
    cvkit.plot_heatmap(torch.rand(3, 3), ["a", "b", "c"], ["x", "y", "z"], ax=ax, diagonal=True)
    assert sum(isinstance(p, Rectangle) for p in ax.patches) == 3
    with pytest.raises(ValueError):
        cvkit.plot_heatmap(torch.rand(3, 2), ["a", "b", "c"], ["x", "y", "z"], ax=ax)
    plt.close(fig)


def test_plot_heatmap_with_a_center_gives_a_colour_scale_symmetric_around_it():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    cvkit.plot_heatmap(torch.tensor([[-5.0, -1.0], [-3.0, 2.0]]), ["a", "b"], ["x", "y"], ax=ax, center=0.0)
    assert ax.images[0].get_clim() == (-5.0, 5.0)
    plt.close(fig)


# ---------------------------------------------------------------------- notebook


def _code_cells(path: Path = NOTEBOOK) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def _notebook_constant(name: str):
    for cell in _code_cells()[1:]:  # the setup cell holds IPython syntax (!, %)
        for node in ast.walk(ast.parse(cell)):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                return ast.literal_eval(node.value)
    raise AssertionError(f"the notebook assigns no {name}")


def _without_solutions(cell: str) -> str:
    return re.sub(r"(?ms)^[ \t]*### BEGIN SOLUTION$.*?^[ \t]*### END SOLUTION$", "", cell)


CAMERA_CALLS = {"camera_photo", "colab_camera_frame", "local_camera_available", "VideoCapture"}


def test_notebook_opens_the_camera_only_behind_one_switch_that_is_off():
    switches, calls_outside, calls_inside = [], [], []
    for cell in _code_cells()[1:]:
        tree = ast.parse(_without_solutions(cell))
        switches += [node.value.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                     and [getattr(t, "id", None) for t in node.targets] == ["USE_CAMERA"]]
        guarded = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", None) == "USE_CAMERA" for node in ast.walk(block)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in CAMERA_CALLS:
                (calls_inside if id(node) in guarded else calls_outside).append(ast.unparse(node))
    assert switches == [False], "one USE_CAMERA switch, off by default, so that Run all never waits for a person"
    assert calls_inside and not calls_outside, calls_outside


def test_each_exercise_has_two_folded_hints_that_hold_no_line_of_its_solution():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    headings = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                and re.match(r"### Exercise \d+:", "".join(c["source"]))]
    assert len(headings) == 6
    for i in headings:
        text = "".join(cells[i]["source"])
        hints = re.findall(r"<details><summary>Hint (\d)</summary>(.*?)</details>", text, re.S)
        assert [number for number, _ in hints] == ["1", "2"], text[:80]
        solution = re.findall(r"(?ms)^[ \t]*### BEGIN SOLUTION$(.*?)^[ \t]*### END SOLUTION$", "".join(cells[i + 1]["source"]))
        code_lines = {line.strip() for block in solution for line in block.splitlines()
                      if len(line.strip()) > 12 and not line.strip().startswith("#")}
        assert code_lines and not [line for line in code_lines if line in text], text[:80]


def test_every_expression_has_an_image_that_shows_it():
    expected = {sample.expected.get("expressions") for sample in cvkit.sample_images(3)}
    assert set(cvkit.read_class_sets()["expressions"]) <= expected


def test_drawn_faces_are_named_drawings_in_the_expressions_prompt():
    drawings = [s for s in cvkit.sample_images(3) if s.name.startswith("face_emoji_")]
    assert drawings and all(set(s.expected) == {"expressions"} for s in drawings)
    assert "drawing" in _notebook_constant("TEMPLATES")["expressions"]


def test_real_weights_check_uses_the_notebooks_templates():
    import realweights

    assert realweights.LAB3_TEMPLATES == _notebook_constant("TEMPLATES")


def test_real_weights_check_asks_for_the_raccoon_among_the_notebooks_new_labels():
    import realweights

    assert realweights.LAB3_NEW_LABELS == _notebook_constant("NEW_LABELS")


# What the notebook's cells computed, read in its kernel after a run (appended to the last cell):
# the guarantees that used to stand as asserts in the student's cells, and the exercise checks fed the lab's own values.
INSPECT = r'''
import json as _json
_facts = {
    "device and dtype": device.type in ("cuda", "cpu") and dtype in (torch.float16, torch.bfloat16, torch.float32),
    "model is SigLIP in dtype": "siglip" in model.config.model_type and model.dtype == dtype,
    "images are RGB, one per sample": len(images) == len(samples) > 0 and all(im.mode == "RGB" for im in images),
    "expectations name class sets": all(set(s.expected) <= set(class_sets) for s in samples),
    "a template per class set": set(TEMPLATES) == set(class_sets),
    "tokens are 64 long": tuple(tokens["input_ids"].shape) == (len(prompts["seasons"]), 64),
    "image vectors, one row per image": img_feats.ndim == 2 and img_feats.shape[0] == len(images),
    "text vectors, one row per label": all(txt_feats[n].shape == (len(l), img_feats.shape[1]) for n, l in class_sets.items()),
    "probabilities, images x labels in [0, 1]": all(p.shape == (len(images), len(class_sets[n])) and bool(((p >= 0) & (p <= 1)).all())
                                                    for n, p in probs.items()),
    "hand-written logits equal the forward pass": bool(torch.allclose(forward, logits["seasons"][:1], atol=TOL)),
    "pipeline agrees": bool(((agree["pipeline"] - agree["by hand"]).abs() <= TOL).all()),
    "scorecard has a row per expectation": len(scorecard) == sum(len(s.expected) for s in samples),
    "scorecard values": bool(scorecard["p(expected)"].between(0, 1).all() and (scorecard["rank"] >= 1).all()),
    "captions belong to lab images": set(CAPTIONS) <= set(names),
    "pair logits N x N, softmax rows sum to 1": pair_logits.shape == (len(CAPTIONS), len(CAPTIONS)) and bool(
        torch.allclose(pair_logits.softmax(dim=1).sum(dim=1), torch.ones(len(CAPTIONS)), atol=1e-5)),
    "two losses for two pairings, all finite": losses.shape == (2, 2) and bool(losses.notna().all().all()),
    "CLIP has no bias": clip.config.model_type == "clip" and not hasattr(clip, "logit_bias"),
    "CLIP probabilities, images x labels": all(p.shape == (len(images), len(class_sets[n])) for n, p in clip_probs.items()),
    "CLIP by hand equals its forward pass": bool(torch.allclose(clip_forward.softmax(dim=1), clip_probs["seasons"][:1], atol=TOL)),
    "CLIP scorecard matches SigLIP's": len(clip_card) == len(scorecard) and bool(clip_card["p(expected)"].between(0, 1).all()),
    "raccoon: SigLIP keeps the subjects' probabilities": bool(torch.allclose(
        torch.tensor(raccoon_table[("SigLIP 2: sigmoid", "subjects")].dropna().values),
        torch.tensor(raccoon_table[("SigLIP 2: sigmoid", "subjects + new")].values[:n_subjects]))),
    "raccoon: CLIP's subjects shrink": bool((raccoon_table[("CLIP: softmax", "subjects + new")].values[:n_subjects]
                                             < raccoon_table[("CLIP: softmax", "subjects")].dropna().values).all()),
    "raccoon: CLIP sums to 1": bool(torch.allclose(clip_row.softmax(dim=0).sum(), torch.tensor(1.0), atol=1e-5)),
    "dune: one logit per season": tuple(dune_logits.shape) == (len(class_sets["seasons"]),),
    "faces: a row per face photo": tuple(face_logits.shape) == (len(faces), len(class_sets["expressions"])),
    "your labels: images x labels": tuple(my_logits.shape) == (len(images), len(my_labels)),
}
_gamed = {  # each exercise check, fed what the lab has already computed
    "1: the lab's seasons probabilities": cvkit.check_sigmoid_scores(lambda *args: probs["seasons"]),
    "1: my_probs": cvkit.check_sigmoid_scores(lambda *args: my_probs),
    "1: siglip_logits with the model's scale and bias": cvkit.check_sigmoid_scores(
        lambda x, y, *rest: torch.sigmoid(siglip_logits(x, y))),
    "4: the softmax of the lab's expressions logits": cvkit.check_softmax_scores(
        lambda x: logits["expressions"].softmax(dim=1)),
    "4: CLIP's probabilities": cvkit.check_softmax_scores(lambda x: clip_probs["expressions"]),
}
print("INSPECT " + _json.dumps({"facts": _facts, "gamed": _gamed, "faces": list(faces)}))
'''


FACE = ROOT / "data" / "images" / "face_astronaut_happy.png"
RUNS = {  # the model the lab loads -> what the run changes in the notebook (besides INSPECT)
    siglip.MODEL_ID: {},  # the lab as committed (nbval's run, see nbrun.executed)
    siglip.BASE_ID: {  # the swap its text suggests, with two face photos of the student's own
        f'MODEL_ID = "{siglip.MODEL_ID}"': f'MODEL_ID = "{siglip.BASE_ID}"',
        'MY_FACES = {"happy": cvkit.DATA_DIR / "images" / "face_mariachi_happy.png"}':
            f"MY_FACES = {{'happy': {str(FACE)!r}, 'sad': {str(FACE)!r}}}",
    },
}
FACES = {siglip.MODEL_ID: ["happy"], siglip.BASE_ID: ["happy", "sad"]}  # the expressions of MY_FACES in each run
pytestmark = [pytestmark, pytest.mark.notebook_run(NOTEBOOK.name, INSPECT)]


@pytest.fixture(scope="module", params=list(RUNS), ids=lambda model_id: f"run with {model_id}")
def lab_run(request, tmp_path_factory):
    """The notebook run with one model, then INSPECT in its kernel: (model id, notebook, report)."""
    from nbrun import execute_with, executed

    if request.param == siglip.MODEL_ID:
        nb = executed(NOTEBOOK.name, INSPECT)
    else:
        with pytest.MonkeyPatch.context() as patch:  # the smaller model only: the notebook must not need the other
            root = tmp_path_factory.mktemp("smaller-model")
            patch.setenv("HF_HOME", siglip.install(root, (siglip.BASE_ID,))["HF_HOME"])
            clip.install(root)  # and CLIP, for section 12
            nb = execute_with(NOTEBOOK.name, RUNS[request.param], then=INSPECT)
    printed = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    report = next(line for text in printed for line in text.splitlines() if line.startswith("INSPECT "))
    return request.param, nb, json.loads(report[len("INSPECT "):])


def test_notebook_prints_the_input_size_of_the_model_it_loads(lab_run):
    model_id, nb, _ = lab_run
    printed = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert {siglip.MODEL_ID: "384 x 384 pixels in 14 x 14-pixel patches, 27 x 27 = 729 patches",
            siglip.BASE_ID: "224 x 224 pixels in 16 x 16-pixel patches, 14 x 14 = 196 patches"}[model_id] in printed


def test_notebook_scores_the_face_photos_given_without_a_camera(lab_run):
    model_id, nb, report = lab_run
    face_cell = next(c for c in nb.cells if c.cell_type == "code" and "MY_FACES = {" in c.source)
    assert any("text/html" in o.get("data", {}) for o in face_cell.outputs), "no table of the face photos"
    assert report["faces"] == FACES[model_id] and report["facts"]["faces: a row per face photo"]


def test_every_check_cell_says_correct_to_the_solutions(lab_run):
    _, nb, _ = lab_run
    checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
    assert len(checks) == 2
    for cell in checks:
        said = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
        assert re.fullmatch(r"Exercise \w+: correct\n", said), (cell.source, said)


def test_every_check_says_not_yet_to_values_the_lab_computed(lab_run):
    _, _, report = lab_run
    assert len(report["gamed"]) == 5 and not any(report["gamed"].values()), report["gamed"]


FACTS = ["device and dtype", "model is SigLIP in dtype", "images are RGB, one per sample", "expectations name class sets",
         "a template per class set", "tokens are 64 long", "image vectors, one row per image",
         "text vectors, one row per label", "probabilities, images x labels in [0, 1]",
         "hand-written logits equal the forward pass", "pipeline agrees", "scorecard has a row per expectation",
         "scorecard values", "captions belong to lab images", "pair logits N x N, softmax rows sum to 1",
         "two losses for two pairings, all finite", "CLIP has no bias",
         "CLIP probabilities, images x labels", "CLIP by hand equals its forward pass", "CLIP scorecard matches SigLIP's",
         "raccoon: SigLIP keeps the subjects' probabilities", "raccoon: CLIP's subjects shrink", "raccoon: CLIP sums to 1",
         "dune: one logit per season", "your labels: images x labels"]


@pytest.mark.parametrize("fact", FACTS)
def test_notebook_variables_after_a_run(lab_run, fact):
    _, _, report = lab_run
    assert report["facts"][fact] is True


def test_importing_cvkit_does_not_import_transformers():
    code = "import sys, cvkit; print('transformers' in sys.modules, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "notebooks", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "False"
