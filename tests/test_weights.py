"""cvkit.weights: where each lab's weights come from, and one-line errors when they cannot be had or loaded."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cvkit
import pytest
import torch
from cvkit import weights as kit_weights

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_cache(tmp_path, monkeypatch):
    """Empty caches for all three libraries, as on a fresh machine."""
    import huggingface_hub.constants
    from ultralytics.utils import SETTINGS

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setitem(SETTINGS, "weights_dir", str(tmp_path / "ultralytics"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("lab, where", [(1, "resnet18-f37072fd.pth"), (2, "yolo11n.pt"),
                                        (3, "models--google--siglip2-so400m-patch14-384")])
def test_check_weights_finds_each_labs_cached_standin_and_says_it_is_one(lab, where, capsys):
    assert where in str(cvkit.check_weights(lab))
    assert "STAND-IN with random weights" in capsys.readouterr().out


@pytest.mark.parametrize("lab", [1, 2, 3])
def test_check_weights_without_cache_or_network_fails_in_one_line_naming_model_host_and_fix(lab, no_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setitem(kit_weights.LAB_MODELS, lab, (kit_weights.LAB_MODELS[lab][0], "127.0.0.1"))  # nothing listens
    with pytest.raises(cvkit.KitError) as info:
        cvkit.check_weights(lab, timeout=2)
    message = str(info.value)
    assert "\n" not in message and "not cached and cannot be downloaded from 127.0.0.1" in message
    assert "make weights" in message


def test_check_weights_for_lab3_in_hub_offline_mode_says_so(no_cache):
    with pytest.raises(cvkit.KitError, match="HF_HUB_OFFLINE is set"):
        cvkit.check_weights(3)


def test_check_weights_for_lab3_looks_for_the_model_the_student_chose(capsys):
    assert "siglip2-so400m-patch14-384" in str(cvkit.check_weights(3))  # the so400m stand-in is cached ...
    with pytest.raises(cvkit.KitError, match=r"^google/siglip2-base-patch16-224 are not cached"):
        cvkit.check_weights(3, "google/siglip2-base-patch16-224")  # ... the base model is not


def test_damaged_resnet_weights_are_named_with_how_to_fetch_them_again(no_cache):
    from torchvision.models import ResNet18_Weights, resnet18

    broken = no_cache / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"PK\x03\x04 half a download")
    with pytest.raises(cvkit.KitError, match=r"cached ResNet-18 .* damaged or incomplete; delete it") as info:
        with cvkit.explain_load_errors(1):
            resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)
    assert str(broken) in str(info.value)


def test_damaged_yolo_weights_offline_are_removed_and_reported_in_one_line(no_cache, offline_attempts):
    from ultralytics import YOLO

    broken = no_cache / "yolo11n.pt"
    broken.write_bytes(b"\x80\x02 not a checkpoint")
    with pytest.raises(cvkit.KitError, match=r"^YOLO11n weights \(yolo11n.pt\) could not be loaded or downloaded") as info:
        with cvkit.explain_load_errors(2):
            YOLO("yolo11n.pt")
    assert "\n" not in str(info.value) and "see README" in str(info.value)
    assert not broken.exists()  # ultralytics drops a damaged official asset before fetching it again
    assert any("github.com" in attempt for attempt in offline_attempts())  # ... and that fetch was refused


def test_gpu_out_of_memory_suggests_a_smaller_batch():
    with pytest.raises(cvkit.KitError, match="ran out of memory: use a smaller batch"):
        with cvkit.explain_oom(1):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_gpu_out_of_memory_in_lab3_also_suggests_the_smaller_model():
    with pytest.raises(cvkit.KitError, match="siglip2-base-patch16-224"):
        with cvkit.explain_load_errors(3):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")


def test_errors_unrelated_to_memory_pass_through_explain_oom():
    with pytest.raises(ValueError):
        with cvkit.explain_oom(1):
            raise ValueError("shape mismatch")


def test_kit_calls_torch_load_only_with_weights_only():
    sources = [*ROOT.glob("notebooks/cvkit/*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("tests/**/*.py")]
    calls = [(p.name, m.group(0)) for p in sources for m in re.finditer(r"torch\.load\([^)]*\)", p.read_text())]
    assert all("weights_only=True" in call for _, call in calls), calls


def test_damaged_siglip_download_names_the_cached_model_folder(tmp_path, monkeypatch):
    import shutil

    import huggingface_hub.constants
    from transformers import AutoModel

    hub = tmp_path / "hub"
    shutil.copytree(Path(os.environ["HF_HOME"]) / "hub", hub)
    for weights in hub.rglob("*.safetensors"):
        weights.unlink()
        weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    with pytest.raises(cvkit.KitError, match=r"models--google--siglip2-so400m-patch14-384 cannot be loaded .* delete it"):
        with cvkit.explain_load_errors(3):
            AutoModel.from_pretrained(kit_weights.SIGLIP_ID, cache_dir=str(hub))
