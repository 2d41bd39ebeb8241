"""Lab 3 helpers (cvkit.zeroshot) and the SigLIP 2 stand-in, tested against the stand-in itself.

The stand-in is built here into a temporary folder, independent of the root conftest. Most tests load it from its
snapshot folder by path, which needs no hub settings. The test that loads it by model id runs in a subprocess:
huggingface_hub reads HF_HOME and HF_HUB_OFFLINE when it is first imported, so changing them in this process would
come too late.
"""

from __future__ import annotations

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
from standins import MARKER, siglip

ROOT = Path(__file__).resolve().parents[1]
SEASONS = ["spring", "summer", "autumn", "winter"]
SUBJECTS = ["human", "cat", "dog", "horse"]


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory) -> Path:
    env = siglip.install(tmp_path_factory.mktemp("siglip-standin"))
    assert env["HF_HUB_OFFLINE"] == "1"
    return Path(env["HF_HOME"])


@pytest.fixture(scope="module")
def snapshot(hf_home) -> Path:
    return siglip.snapshot_dir(hf_home)


@pytest.fixture(scope="module")
def model_and_processor(snapshot):
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(snapshot, dtype=torch.float32).eval()
    return model, AutoProcessor.from_pretrained(snapshot)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    sizes = [(320, 240), (200, 300), (384, 384), (500, 280), (257, 199)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


class TowerSpy:
    """Wrap a tower's forward and record the batch size of each call (independent of cvkit.count_tower_calls)."""

    def __init__(self, module, key):
        self.rows: list[int] = []
        self._module, self._forward, self._key = module, module.forward, key

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


# ------------------------------------------------------------------ the stand-in


def test_standin_is_written_in_the_hub_cache_layout_under_the_real_model_id(hf_home, snapshot):
    repo = hf_home / "hub" / "models--google--siglip2-so400m-patch14-384"
    commit = (repo / "refs" / "main").read_text()
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    assert snapshot == repo / "snapshots" / commit
    assert (snapshot / MARKER).is_file()
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"} <= {
        p.name for p in snapshot.iterdir()
    }


def test_standin_configs_mirror_the_real_checkpoint(snapshot):
    config = json.loads((snapshot / "config.json").read_text())
    assert config["model_type"] == "siglip"
    assert config["vision_config"]["image_size"] == 384 and config["vision_config"]["patch_size"] == 14
    assert config["text_config"]["max_position_embeddings"] == 64
    pre = json.loads((snapshot / "preprocessor_config.json").read_text())
    assert pre["image_processor_type"] == "SiglipImageProcessor" and pre["size"] == {"height": 384, "width": 384}
    assert pre["image_mean"] == pre["image_std"] == [0.5, 0.5, 0.5]
    tok = json.loads((snapshot / "tokenizer_config.json").read_text())
    assert tok["tokenizer_class"] == "GemmaTokenizer"
    assert (tok["add_bos_token"], tok["add_eos_token"], tok["padding_side"]) == (False, True, "right")
    assert tok["model_input_names"] == ["input_ids"] and "model_max_length" not in tok


def test_standin_loads_by_model_id_offline_through_automodel_autoprocessor_and_pipeline(hf_home, tmp_path):
    script = textwrap.dedent(
        """
        import torch
        from transformers import AutoModel, AutoProcessor, pipeline
        from PIL import Image

        model_id = "google/siglip2-so400m-patch14-384"
        model = AutoModel.from_pretrained(model_id, dtype=torch.float32)
        processor = AutoProcessor.from_pretrained(model_id)
        classifier = pipeline("zero-shot-image-classification", model=model_id)
        result = classifier(Image.new("RGB", (64, 48), "red"), candidate_labels=["cat", "dog"])
        print(type(model).__name__, type(processor).__name__, type(processor.tokenizer).__name__,
              type(processor.image_processor).__name__, model.config.vision_config.hidden_size, len(result))
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
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["SiglipModel", "SiglipProcessor", "GemmaTokenizer", "SiglipImageProcessor", str(siglip.HIDDEN), "2"]
    assert not net_log.exists() or not net_log.read_text().strip(), net_log.read_text()


def test_standin_tokenizer_pads_to_64_only_when_asked_like_the_real_one(model_and_processor):
    _, processor = model_and_processor
    ids = processor.tokenizer(["this is a photo of cat."], padding="max_length", return_tensors="pt")["input_ids"]
    assert ids.shape[1] < 64  # no model_max_length in the config: padding="max_length" alone does not reach 64


# ---------------------------------------------------------------------- prompts


def test_make_prompts_lowercases_labels_and_fills_the_template():
    assert cvkit.make_prompts(["Golden  Retriever ", "CAT"]) == [
        "This is a photo of golden retriever.",
        "This is a photo of cat.",
    ]
    assert cvkit.make_prompts(["Snow"], "{label}") == ["snow"]


@pytest.mark.parametrize(
    "labels, template",
    [([], cvkit.PROMPT_TEMPLATE), (["cat", " "], cvkit.PROMPT_TEMPLATE), ("cat", cvkit.PROMPT_TEMPLATE), (["cat"], "a photo of {}")],
    ids=["no labels", "blank label", "a string, not a list", "template without {label}"],
)
def test_make_prompts_rejects_unusable_input_with_a_kit_error(labels, template):
    with pytest.raises(KitError):
        cvkit.make_prompts(labels, template)


def test_text_is_padded_to_64_tokens_with_eos_then_pad(model_and_processor):
    _, processor = model_and_processor
    tokens = cvkit.tokenize_prompts(processor, cvkit.make_prompts(SEASONS))
    ids = tokens["input_ids"]
    assert list(tokens.keys()) == ["input_ids"]  # no attention mask, as SigLIP was trained
    assert ids.shape == (4, 64)
    tok = processor.tokenizer
    for row in ids.tolist():
        end = row.index(tok.eos_token_id)
        assert row[0] != tok.bos_token_id and set(row[end + 1 :]) == {tok.pad_token_id}


def test_padding_to_another_length_changes_the_text_features(model_and_processor):
    model, processor = model_and_processor
    prompts = cvkit.make_prompts(SEASONS)
    with torch.inference_mode():
        short = model.get_text_features(**processor.tokenizer(prompts, padding=True, return_tensors="pt")).pooler_output
    short = short / short.norm(dim=-1, keepdim=True)
    assert not torch.allclose(short, cvkit.text_features(model, processor, SEASONS), atol=1e-3)


# --------------------------------------------------------------------- features


def test_image_features_have_one_unit_row_per_image(model_and_processor, images):
    model, processor = model_and_processor
    feats = cvkit.image_features(model, processor, images, "cpu", torch.float32, batch_size=2)
    assert feats.shape == (len(images), model.config.vision_config.hidden_size)
    assert feats.dtype == torch.float32 and feats.device.type == "cpu"
    assert torch.allclose(feats.norm(dim=1), torch.ones(len(images)), atol=1e-5)


def test_image_features_do_not_depend_on_the_batch_size(model_and_processor, images):
    model, processor = model_and_processor
    one = cvkit.image_features(model, processor, images, "cpu", torch.float32, batch_size=1)
    many = cvkit.image_features(model, processor, images, "cpu", torch.float32, batch_size=8)
    assert torch.allclose(one, many, atol=1e-5)


def test_text_features_have_one_unit_row_per_label(model_and_processor):
    model, processor = model_and_processor
    feats = cvkit.text_features(model, processor, SUBJECTS, cvkit.PROMPT_TEMPLATE, "cpu")
    assert feats.shape == (len(SUBJECTS), model.config.text_config.projection_size)
    assert torch.allclose(feats.norm(dim=1), torch.ones(len(SUBJECTS)), atol=1e-5)


def test_image_features_send_each_image_through_the_image_tower_once(model_and_processor, images, spies):
    model, processor = model_and_processor
    image_spy, text_spy = spies
    cvkit.image_features(model, processor, images, "cpu", torch.float32, batch_size=2)
    assert image_spy.rows == [2, 2, 1]
    assert text_spy.rows == []


def test_text_features_send_each_class_set_through_the_text_tower_once(model_and_processor, spies):
    model, processor = model_and_processor
    image_spy, text_spy = spies
    for labels in (SEASONS, SUBJECTS):
        cvkit.text_features(model, processor, labels, cvkit.PROMPT_TEMPLATE, "cpu")
    assert text_spy.rows == [4, 4]
    assert image_spy.rows == []


def test_zero_shot_probs_reuse_stored_features_without_running_a_tower(model_and_processor, images, spies):
    model, processor = model_and_processor
    img = cvkit.image_features(model, processor, images, "cpu", torch.float32)
    txt = {name: cvkit.text_features(model, processor, labels) for name, labels in (("s", SEASONS), ("t", SUBJECTS))}
    image_spy, text_spy = spies
    calls_before = (len(image_spy.rows), len(text_spy.rows))
    for feats in txt.values():
        cvkit.zero_shot_probs(model, img, feats)
    assert (len(image_spy.rows), len(text_spy.rows)) == calls_before == (1, 2)


def test_count_tower_calls_counts_calls_and_rows_like_a_spy(model_and_processor, images, spies):
    model, processor = model_and_processor
    image_spy, text_spy = spies
    with cvkit.count_tower_calls(model) as calls:
        cvkit.image_features(model, processor, images, "cpu", torch.float32, batch_size=3)
        cvkit.text_features(model, processor, SEASONS)
    assert (calls.image_calls, calls.images) == (len(image_spy.rows), sum(image_spy.rows)) == (2, len(images))
    assert (calls.text_calls, calls.texts) == (len(text_spy.rows), sum(text_spy.rows)) == (1, 4)
    cvkit.text_features(model, processor, SEASONS)  # after the block: no longer counted
    assert calls.texts == 4


# ----------------------------------------------------------------------- scores


def test_zero_shot_probs_are_an_images_by_labels_matrix_in_0_1(model_and_processor, images):
    model, processor = model_and_processor
    probs = cvkit.zero_shot_probs(
        model,
        cvkit.image_features(model, processor, images, "cpu", torch.float32),
        cvkit.text_features(model, processor, SUBJECTS),
    )
    assert probs.shape == (len(images), len(SUBJECTS))
    assert ((probs >= 0) & (probs <= 1)).all()
    assert probs.std() > 1e-3  # the stand-in tells labels and images apart, so the comparisons below mean something


def test_zero_shot_probs_is_the_sigmoid_of_scaled_cosine_plus_bias():
    model = torch.nn.Module()
    model.logit_scale = torch.nn.Parameter(torch.tensor([np.log(10.0)], dtype=torch.float32))
    model.logit_bias = torch.nn.Parameter(torch.tensor([-2.0]))
    img = torch.tensor([[3.0, 4.0]])  # not unit length: the helper normalises
    txt = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    expected = torch.sigmoid(torch.tensor([[10 * 0.6 - 2, 10 * 0.8 - 2]]))
    assert torch.allclose(cvkit.zero_shot_probs(model, img, txt), expected, atol=1e-6)


def test_hand_written_logits_equal_the_models_logits_per_image(model_and_processor, images):
    model, processor = model_and_processor
    inputs = processor(
        text=cvkit.make_prompts(SEASONS), images=images, padding="max_length", max_length=64, return_tensors="pt"
    )
    with torch.inference_mode():
        expected = model(**inputs).logits_per_image
    by_hand = cvkit.zero_shot_logits(
        model, cvkit.image_features(model, processor, images, "cpu", torch.float32), cvkit.text_features(model, processor, SEASONS)
    )
    assert by_hand.shape == expected.shape == (len(images), len(SEASONS))
    assert torch.allclose(by_hand, expected, atol=1e-4)


def test_hand_written_probs_agree_with_the_pipeline(model_and_processor, images):
    from transformers import pipeline

    model, processor = model_and_processor
    classifier = pipeline(
        "zero-shot-image-classification",
        model=model,
        tokenizer=processor.tokenizer,
        image_processor=processor.image_processor,
        device="cpu",
    )
    probs = cvkit.zero_shot_probs(
        model, cvkit.image_features(model, processor, images, "cpu", torch.float32), cvkit.text_features(model, processor, SUBJECTS)
    )
    for i in (0, 3):
        from_pipeline = cvkit.pipeline_probs(classifier, images[i], [label.upper() for label in SUBJECTS])
        assert torch.allclose(from_pipeline, probs[i], atol=1e-5)


def test_pipeline_pads_siglip_prompts_to_64_tokens(model_and_processor, images):
    from transformers import pipeline

    model, processor = model_and_processor
    classifier = pipeline(
        "zero-shot-image-classification", model=model, tokenizer=processor.tokenizer, image_processor=processor.image_processor
    )
    prepared = classifier.preprocess(images[0], candidate_labels=SUBJECTS)
    assert prepared["text_inputs"][0]["input_ids"].shape == (len(SUBJECTS), 64)


def test_pipeline_probs_returns_scores_in_label_order_with_the_pipelines_template():
    seen = {}

    def fake_classifier(image, candidate_labels, hypothesis_template):
        seen.update(labels=candidate_labels, template=hypothesis_template)
        scores = {"cat": 0.2, "dog": 0.9, "sea lion": 0.5}
        return sorted(({"label": l, "score": scores[l]} for l in candidate_labels), key=lambda r: -r["score"])

    probs = cvkit.pipeline_probs(fake_classifier, None, ["Cat", "dog", "sea  lion"], "a photo of {label}.")
    assert seen == {"labels": ["cat", "dog", "sea lion"], "template": "a photo of {}."}
    assert probs.tolist() == pytest.approx([0.2, 0.9, 0.5])
    with pytest.raises(KitError):
        cvkit.pipeline_probs(fake_classifier, None, ["cat", "Cat"])


# ------------------------------------------------------------ reading results


def test_ranked_puts_the_most_likely_label_first():
    assert cvkit.ranked(torch.tensor([0.1, 0.7, 0.3]), ["a", "b", "c"]) == [
        ("b", pytest.approx(0.7)),
        ("c", pytest.approx(0.3)),
        ("a", pytest.approx(0.1)),
    ]


def test_scorecard_gives_rank_and_probability_of_the_expected_label():
    class_sets = {"seasons": SEASONS, "subjects": SUBJECTS}
    probs = {
        "seasons": torch.tensor([[0.1, 0.2, 0.3, 0.9], [0.5, 0.4, 0.3, 0.2]]),
        "subjects": torch.tensor([[0.8, 0.1, 0.1, 0.1], [0.1, 0.2, 0.7, 0.3]]),
    }
    expected = [{"seasons": "winter"}, {"seasons": "autumn", "subjects": "dog"}]
    rows = cvkit.zero_shot_scorecard(["a", "b"], expected, probs, class_sets)
    assert [(r[0], r[1], r[3], r[5], r[6]) for r in rows] == [
        ("a", "seasons", "winter", 1, "yes"),
        ("b", "seasons", "spring", 3, "no"),
        ("b", "subjects", "dog", 1, "yes"),
    ]
    assert rows[1][4] == pytest.approx(0.3)


def test_scorecard_refuses_an_expected_label_outside_its_class_set():
    with pytest.raises(KitError, match="snow"):
        cvkit.zero_shot_scorecard(["a"], [{"seasons": "snow"}], {"seasons": torch.rand(1, 4)}, {"seasons": SEASONS})


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


def test_importing_cvkit_does_not_import_transformers():
    code = "import sys, cvkit; print('transformers' in sys.modules, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "notebooks", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "False"
