"""cvkit.weights: where each model's weights come from, and one-line errors only when a missing or damaged file is why."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cvkit
import pytest
import torch
from cvkit import weights as kit_weights

pytestmark = pytest.mark.standins("resnet", "yolo", "siglip")  # the stand-in models its tests load

ROOT = Path(__file__).resolve().parents[1]
SO400M, BASE = "google/siglip2-so400m-patch14-384", "google/siglip2-base-patch16-224"


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


@pytest.mark.parametrize("source, where", [("ResNet18_Weights.IMAGENET1K_V1", "resnet18-f37072fd.pth"),
                                           ("yolo11n.pt", "yolo11n.pt"),
                                           (SO400M, "models--google--siglip2-so400m-patch14-384")])
def test_locate_weights_returns_where_the_library_has_them_cached(source, where, capsys):
    assert where in str(cvkit.locate_weights(source))
    assert capsys.readouterr().out.startswith(f"{source}: cached at ")


def test_locate_weights_takes_torchvision_weights_themselves():
    from torchvision.models import ResNet18_Weights

    assert cvkit.locate_weights(ResNet18_Weights.IMAGENET1K_V1).name == "resnet18-f37072fd.pth"


@pytest.mark.parametrize("source", ["ResNet18_Weights.IMAGENET1K_V1", "yolo11n.pt", SO400M])
def test_locate_weights_without_cache_or_network_fails_in_one_line_naming_model_host_and_fix(source, no_cache,
                                                                                            monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(kit_weights, "weights_host", lambda source: "127.0.0.1")  # nothing listens on 443 there
    with pytest.raises(cvkit.KitError) as info:
        cvkit.locate_weights(source, timeout=2)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{source} is not cached and cannot be downloaded from 127.0.0.1")
    assert "make weights" in message


def test_locate_weights_in_hub_offline_mode_says_so(no_cache):
    with pytest.raises(cvkit.KitError, match="HF_HUB_OFFLINE is set"):
        cvkit.locate_weights(SO400M)


def test_locate_weights_names_the_model_the_student_chose(no_cache):
    with pytest.raises(cvkit.KitError, match=rf"^{BASE} is not cached"):
        cvkit.locate_weights(BASE)


@pytest.mark.parametrize("source", ["resnet18", "IMAGENET1K_V1", 18, "no such thing"])
def test_locate_weights_refuses_what_names_no_weights_in_one_line(source):
    with pytest.raises(cvkit.KitError, match="weights"):
        cvkit.locate_weights(source)


def test_a_yolo_name_ultralytics_does_not_publish_is_named_with_the_closest_it_does(no_cache, offline_attempts):
    with pytest.raises(cvkit.KitError) as info:
        cvkit.locate_weights("yolov11n.pt")
    assert str(info.value).startswith("ultralytics publishes no weights called yolov11n.pt, and there is no such file "
                                      "here (the closest it publishes: yolo11n.pt")
    assert offline_attempts() == []  # said without asking the network


def test_loading_a_yolo_name_ultralytics_does_not_publish_says_so_not_that_the_network_is_down(no_cache,
                                                                                               offline_attempts):
    from ultralytics import YOLO

    with pytest.raises(cvkit.KitError, match=r"^ultralytics publishes no weights called yolov11n.pt") as info:
        with cvkit.explain_load_errors("yolov11n.pt"):
            YOLO("yolov11n.pt")
    assert "network" not in str(info.value) and "downloaded" not in str(info.value)


def test_a_torchvision_weights_typo_is_named_with_the_closest_weights_it_has():
    with pytest.raises(cvkit.KitError) as info:
        cvkit.locate_weights("ResNet18_Weights.IMAGENET1K_V3")
    assert str(info.value).startswith("torchvision has no weights called ResNet18_Weights.IMAGENET1K_V3 (the closest "
                                      "it publishes: ResNet18_Weights.IMAGENET1K_V1")
    assert "\n" not in str(info.value)


def test_a_typo_in_the_loading_cell_passes_through_unchanged():
    from torchvision.models import ResNet18_Weights, resnet18

    with pytest.raises(TypeError, match="weigths"):
        with cvkit.explain_load_errors(ResNet18_Weights.IMAGENET1K_V1):
            resnet18(weigths=ResNet18_Weights.IMAGENET1K_V1)


def test_a_typo_passes_through_even_when_the_weights_are_not_cached(no_cache):
    from torchvision.models import ResNet18_Weights, resnet18

    with pytest.raises(TypeError, match="weigths"):
        with cvkit.explain_load_errors(ResNet18_Weights.IMAGENET1K_V1):
            resnet18(weigths=ResNet18_Weights.IMAGENET1K_V1)


def test_damaged_resnet_weights_are_named_with_how_to_fetch_them_again_and_the_cause_kept(no_cache):
    from torchvision.models import ResNet18_Weights, resnet18

    broken = no_cache / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"PK\x03\x04 half a download")
    with pytest.raises(cvkit.KitError, match=r"cached ResNet18_Weights.IMAGENET1K_V1 .* damaged or incomplete") as info:
        with cvkit.explain_load_errors(ResNet18_Weights.IMAGENET1K_V1):
            resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)
    assert str(broken) in str(info.value) and "delete it" in str(info.value) and "\n" not in str(info.value)
    assert info.value.__cause__ is not None


def test_damaged_yolo_weights_are_named_with_how_to_fetch_them_again(no_cache, monkeypatch):
    from ultralytics import YOLO

    monkeypatch.setattr("ultralytics.nn.tasks.SAFE_LOAD", True)  # as in the notebooks: setup_notebook() turns it on
    broken = no_cache / "yolo11n.pt"
    broken.write_bytes(b"\x80\x02 not a checkpoint")
    with pytest.raises(cvkit.KitError, match=r"^the cached yolo11n.pt at .* is damaged or incomplete") as info:
        with cvkit.explain_load_errors("yolo11n.pt"):
            YOLO("yolo11n.pt")
    assert str(broken) in str(info.value) and "delete it" in str(info.value) and "\n" not in str(info.value)


def test_damaged_yolo_weights_loaded_unsafely_offline_are_reported_as_not_downloadable(no_cache, monkeypatch,
                                                                                      offline_attempts):
    from ultralytics import YOLO

    monkeypatch.setattr("ultralytics.nn.tasks.SAFE_LOAD", False)  # ultralytics imported before setup_notebook()
    broken = no_cache / "yolo11n.pt"
    broken.write_bytes(b"\x80\x02 not a checkpoint")
    with pytest.raises(cvkit.KitError, match=r"^yolo11n.pt could not be downloaded") as info:
        with cvkit.explain_load_errors("yolo11n.pt"):
            YOLO("yolo11n.pt")
    assert "\n" not in str(info.value) and "see README" in str(info.value)
    assert not broken.exists()  # ultralytics drops a damaged official asset before fetching it again
    assert any("github.com" in attempt for attempt in offline_attempts())  # ... and that fetch was refused


def test_damaged_siglip_weights_name_the_cached_model_folder(tmp_path, monkeypatch):
    import huggingface_hub.constants
    from transformers import AutoModel

    hub = tmp_path / "hub"
    shutil.copytree(Path(os.environ["HF_HOME"]) / "hub", hub)
    for weights in hub.rglob("*.safetensors"):
        weights.unlink()
        weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    with pytest.raises(cvkit.KitError, match=r"models--google--siglip2-so400m-patch14-384 is damaged .* delete it"):
        with cvkit.explain_load_errors(SO400M):
            AutoModel.from_pretrained(SO400M, cache_dir=str(hub))


def test_a_failed_load_names_the_model_actually_loaded(no_cache):
    from transformers import AutoModel

    with pytest.raises(cvkit.KitError, match=rf"^{BASE} could not be downloaded"):
        with cvkit.explain_load_errors(BASE):
            AutoModel.from_pretrained(BASE)


def test_gpu_out_of_memory_says_what_to_change_and_keeps_the_cause():
    with pytest.raises(cvkit.KitError, match="ran out of memory: use a smaller batch") as info:
        with cvkit.explain_oom():
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert isinstance(info.value.__cause__, torch.cuda.OutOfMemoryError)


def test_gpu_out_of_memory_gives_the_hint_it_was_given():
    with pytest.raises(cvkit.KitError, match=f"ran out of memory: try {BASE}"):
        with cvkit.explain_oom(f"try {BASE}"):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")


def test_gpu_out_of_memory_while_loading_suggests_a_smaller_model():
    with pytest.raises(cvkit.KitError, match=f"smaller model than {SO400M}"):
        with cvkit.explain_load_errors(SO400M):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")


def test_errors_unrelated_to_memory_pass_through_explain_oom():
    with pytest.raises(ValueError):
        with cvkit.explain_oom():
            raise ValueError("shape mismatch")
