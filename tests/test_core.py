"""cvkit's environment (devices, dtype, the environment check), images (opened in RGB, upright, or a one-line
error), the kit's data (manifest, labels, class sets), plots, and errors shown in one line."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from types import SimpleNamespace

import cvkit
import cvkit.data
import cvkit.errors
import pytest
import torch
from PIL import Image

MODES = ["L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "1"]


# ----------------------------------------------------------------- devices


def test_pick_device_is_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cvkit.pick_device() == torch.device("cpu")


def test_pick_device_is_cuda_when_a_gpu_is_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cvkit.pick_device() == torch.device("cuda")


def test_pick_dtype_is_float32_on_cpu():
    assert cvkit.pick_dtype("cpu") == torch.float32


def test_pick_dtype_is_float16_on_a_t4(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulated bf16 must not count
    assert cvkit.pick_dtype("cuda") == torch.float16


def test_pick_dtype_is_bfloat16_on_ampere_and_newer(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    assert cvkit.pick_dtype("cuda") == torch.bfloat16


def test_device_report_on_cpu_names_versions_and_fallback(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    report = cvkit.device_report()
    assert report["torch"] == torch.__version__ and report["device"] == "cpu" and report["dtype"] == "float32"
    assert "runs on the CPU" in capsys.readouterr().out


def test_device_report_in_colab_without_gpu_says_how_to_get_a_t4(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(sys.modules, "google.colab", SimpleNamespace())
    cvkit.device_report()
    assert "Runtime > Change runtime type > T4 GPU" in capsys.readouterr().out


def test_device_report_on_a_t4_gives_name_memory_capability_and_fp16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    props = SimpleNamespace(name="Tesla T4", total_memory=15 * 2**30, major=7, minor=5)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    report = cvkit.device_report()
    assert (report["gpu"], report["gpu_memory_gb"], report["compute_capability"], report["dtype"]) == (
        "Tesla T4", 15.0, "7.5", "float16")


# ------------------------------------------------------------------ images


def _save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize("mode", MODES)
def test_load_image_returns_rgb_of_the_same_size_for_every_mode(tmp_path, mode):
    source = Image.new("RGB", (31, 17), (200, 40, 90)).convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I", "LA") else "PNG"
    path = _save(source, tmp_path / f"image.{fmt.lower()}", format=fmt)
    loaded = cvkit.load_image(path)
    assert loaded.mode == "RGB" and loaded.size == (31, 17)


def test_load_image_scales_16_bit_to_8_bit(tmp_path):
    path = _save(Image.new("I;16", (4, 4), 65535), tmp_path / "white16.png")
    assert cvkit.load_image(path).getpixel((0, 0)) == (255, 255, 255)


def test_load_image_puts_transparent_pixels_on_white(tmp_path):
    path = _save(Image.new("RGBA", (4, 4), (255, 0, 0, 0)), tmp_path / "clear.png")
    assert cvkit.load_image(path).getpixel((0, 0)) == (255, 255, 255)


def test_load_image_applies_exif_orientation(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    path = _save(image, tmp_path / "rotated.jpg", exif=exif, quality=95)
    loaded = cvkit.load_image(path)
    assert loaded.size == (20, 40)
    red, green, blue = loaded.getpixel((10, 5))  # the red half is now on top
    assert red > 200 and blue < 60


def test_load_image_cmyk_jpeg_keeps_its_colour(tmp_path):
    path = _save(Image.new("RGB", (8, 8), (250, 10, 10)).convert("CMYK"), tmp_path / "cmyk.jpg", quality=95)
    red, green, blue = cvkit.load_image(path).getpixel((4, 4))
    assert red > 200 and green < 60 and blue < 60


def test_load_image_missing_file_is_a_short_error(tmp_path):
    with pytest.raises(cvkit.KitError, match="no such file"):
        cvkit.load_image(tmp_path / "nothing.jpg")


def test_load_image_folder_is_a_short_error(tmp_path):
    with pytest.raises(cvkit.KitError, match="is a folder"):
        cvkit.load_image(tmp_path)


def test_load_image_html_saved_as_jpg_says_html(tmp_path):
    path = tmp_path / "page.jpg"
    path.write_text("<!DOCTYPE html><html><body>Not found</body></html>")
    with pytest.raises(cvkit.KitError, match="HTML"):
        cvkit.load_image(path)


def test_load_image_empty_file_says_empty(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(cvkit.KitError, match="empty"):
        cvkit.load_image(path)


def test_load_image_truncated_jpeg_says_damaged(tmp_path):
    buffer = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(buffer, format="JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(cvkit.KitError, match="damaged or truncated"):
        cvkit.load_image(path)


def test_load_image_decompression_bomb_is_refused_with_reason(tmp_path, monkeypatch):
    path = _save(Image.new("L", (100, 100)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 100x100 is then over twice the limit
    with pytest.raises(cvkit.KitError, match="decompression bomb"):
        cvkit.load_image(path)


# ----------------------------------------------------------------- manifest


def _manifest(tmp_path: Path) -> Path:
    path = tmp_path / "manifest.csv"
    path.write_text(
        "file,lab1,lab2,lab3,licence,author,origin,sha256\n"
        "cat.jpg,tabby|tiger cat,cat:1,subjects=cat|seasons=winter,CC0,Ann,pkg,abc\n"
        "street.jpg,,person:3|car:2,,Public domain,,pkg,def\n"
    )
    return path


def test_sample_images_lab1_gives_accepted_class_lists(tmp_path):
    (sample,) = cvkit.sample_images(1, _manifest(tmp_path))
    assert sample.name == "cat" and sample.expected == ["tabby", "tiger cat"]
    assert sample.path == tmp_path / "images" / "cat.jpg" and sample.credit == "Ann (CC0)"


def test_sample_images_lab2_gives_minimum_counts(tmp_path):
    samples = cvkit.sample_images(2, _manifest(tmp_path))
    assert [s.expected for s in samples] == [{"cat": 1}, {"person": 3, "car": 2}]


def test_sample_images_lab3_gives_label_per_class_set(tmp_path):
    (sample,) = cvkit.sample_images(3, _manifest(tmp_path))
    assert sample.expected == {"subjects": "cat", "seasons": "winter"}


def test_sample_images_unknown_lab_is_a_short_error(tmp_path):
    with pytest.raises(cvkit.KitError, match=r"lab.s number 1, 2 or 3 .*not 4$"):
        cvkit.sample_images(4, _manifest(tmp_path))


def test_sample_images_of_a_lab_number_written_as_text_says_it_takes_the_number(tmp_path):
    with pytest.raises(cvkit.KitError, match=r"^sample_images takes the lab's number 1, 2 or 3 \(an int\), not '1'$"):
        cvkit.sample_images("1", _manifest(tmp_path))


def test_sample_images_of_the_kit_exist_and_open():
    samples = cvkit.sample_images(1)
    assert len(samples) >= 6
    assert all(cvkit.load_image(s.path).mode == "RGB" for s in samples)


def test_read_labels_missing_file_is_a_short_error():
    with pytest.raises(cvkit.KitError, match="no labels file"):
        cvkit.read_labels("nope.txt")


def test_read_class_sets_rejects_an_empty_set(tmp_path, monkeypatch):
    (tmp_path / "sets.json").write_text('{"seasons": []}')
    monkeypatch.setattr(cvkit.data, "LABELS_DIR", tmp_path)
    with pytest.raises(cvkit.KitError, match="'seasons'.*empty"):
        cvkit.read_class_sets("sets.json")


# ---------------------------------------------------------- tables, plots


def test_show_grid_draws_one_titled_panel_per_image():
    import matplotlib.pyplot as plt

    plt.close("all")
    cvkit.show_grid([Image.new("RGB", (8, 8))] * 3, ["a", "b", "c"], ncols=2)
    titles = [ax.get_title() for ax in plt.gcf().axes]
    assert titles == ["a", "b", "c", ""]
    plt.close("all")


def test_show_grid_without_images_is_a_short_error():
    with pytest.raises(cvkit.KitError):
        cvkit.show_grid([])


def test_show_grid_with_fewer_titles_than_images_says_so_in_one_line():
    with pytest.raises(cvkit.KitError, match="3 images but 2 titles"):
        cvkit.show_grid([Image.new("RGB", (8, 8))] * 3, ["a", "b"])


@pytest.fixture
def ultralytics_online(monkeypatch):
    """ultralytics imported (its PIL.Image.open wrapper in place) and free to pip-install; returns the installs tried."""
    import subprocess

    import ultralytics.utils.checks as checks
    import ultralytics.utils.patches as patches

    installs: list = []
    monkeypatch.setattr(Image, "open", patches.image_open)
    monkeypatch.setattr(patches, "_pil_plugins_registered", False)
    monkeypatch.setattr(checks, "ONLINE", True)
    monkeypatch.setattr(checks, "AUTOINSTALL", True)
    monkeypatch.setattr(checks, "check_uv", lambda: False)  # pip, whatever `uv` on the PATH is (or is not) to this user
    monkeypatch.setattr(subprocess, "check_output", lambda *args, **kwargs: installs.append(args) or b"")
    return installs


def test_ultralytics_own_image_open_would_install_a_package_for_a_non_image(tmp_path, ultralytics_online):
    path = tmp_path / "page.jpg"
    path.write_text("<html><body>Sign in to view this image</body></html>")
    with pytest.raises(ImportError):  # after the (faked) install, pi_heif is still not there
        Image.open(path)
    assert ultralytics_online  # the wrapper tried `pip install pi-heif`: what the kit must never trigger


def test_load_image_of_a_non_image_installs_nothing_with_ultralytics_online(tmp_path, ultralytics_online,
                                                                            offline_attempts):
    path = tmp_path / "page.jpg"
    path.write_text("<html><body>Sign in to view this image</body></html>")
    with pytest.raises(cvkit.KitError, match="HTML"):
        cvkit.load_image(path)
    assert ultralytics_online == [] and offline_attempts() == []


def test_load_image_opens_a_heic_photo_from_a_phone(tmp_path):
    import pillow_heif

    heif = pillow_heif.from_pillow(Image.new("RGB", (64, 48), (200, 30, 30)))
    heif.save(tmp_path / "IMG_0001.HEIC", quality=90)
    image = cvkit.load_image(tmp_path / "IMG_0001.HEIC")
    assert image.mode == "RGB" and image.size == (64, 48)
    assert abs(image.getpixel((32, 24))[0] - 200) < 20


@pytest.mark.skipif(not __import__("PIL.features").features.check("avif"), reason="this Pillow has no AVIF support")
def test_load_image_opens_an_avif_photo(tmp_path):
    _save(Image.new("RGB", (64, 48), (30, 200, 30)), tmp_path / "photo.avif", quality=90)
    image = cvkit.load_image(tmp_path / "photo.avif")
    assert image.mode == "RGB" and image.size == (64, 48) and abs(image.getpixel((32, 24))[1] - 200) < 20


def test_load_image_accepts_a_pil_image_and_turns_it_upright(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    path = _save(image, tmp_path / "rotated.jpg", exif=exif)
    with Image.open(path) as opened:
        assert cvkit.load_image(opened).size == (20, 40)


@pytest.mark.parametrize("shape", [(20, 30), (20, 30, 3), (20, 30, 4)])
def test_load_image_accepts_a_uint8_array(shape):
    import numpy as np

    image = cvkit.load_image(np.full(shape, 128, dtype=np.uint8))
    assert image.mode == "RGB" and image.size == (30, 20)


def test_load_image_refuses_a_float_array_in_one_line():
    import numpy as np

    with pytest.raises(cvkit.KitError, match=r"uint8 pixels .* got float32 with shape \(2, 2, 3\)"):
        cvkit.load_image(np.zeros((2, 2, 3), dtype=np.float32))


def test_load_image_refuses_what_is_no_image_source_in_one_line():
    with pytest.raises(cvkit.KitError, match="not int"):
        cvkit.load_image(42)


def test_load_image_random_bytes_with_an_image_extension_is_not_an_image(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(cvkit.KitError, match="not an image Pillow can read"):
        cvkit.load_image(path)


def test_load_image_opens_a_1x1_image(tmp_path):
    path = _save(Image.new("RGB", (1, 1), (1, 2, 3)), tmp_path / "dot.png")
    assert cvkit.load_image(path).getpixel((0, 0)) == (1, 2, 3)


def test_load_image_opens_a_very_large_photo_below_the_bomb_limit(tmp_path):
    path = _save(Image.new("RGB", (8000, 6000), (9, 9, 9)), tmp_path / "big.jpg", quality=50)
    assert cvkit.load_image(path).size == (8000, 6000)


def test_use_short_errors_makes_ipython_show_a_kit_error_as_one_line(capfd):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        cvkit.errors.use_short_errors()
        shell.run_cell("import cvkit\nraise cvkit.KitError('no such file: cat.jpg')")
        err = capfd.readouterr().err
        assert err.strip() == "KitError: no such file: cat.jpg"
        shell.run_cell("raise ValueError('other errors keep their traceback')")
        assert "Traceback" in "".join(capfd.readouterr())
    finally:
        InteractiveShell.clear_instance()


DEVICE_MIX = "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"
CONV_DEVICE_MIX = "Input type (torch.FloatTensor) and weight type (torch.cuda.FloatTensor) should be the same"
CONV_DTYPE_MIX = "Input type (torch.cuda.FloatTensor) and weight type (torch.cuda.HalfTensor) should be the same"


@pytest.mark.parametrize("message", [DEVICE_MIX, CONV_DEVICE_MIX])
def test_a_model_and_its_input_on_different_devices_is_explained(message):
    assert "different devices" in cvkit.errors._explain_torch_error(message)


@pytest.mark.parametrize("message", [CONV_DTYPE_MIX, "mat1 and mat2 must have the same dtype, but got Float and Half"])
def test_a_model_and_its_input_in_different_number_formats_is_explained(message):
    assert "number format" in cvkit.errors._explain_torch_error(message)


def test_asking_topk_for_more_classes_than_there_are_is_explained():
    with pytest.raises(RuntimeError) as info:
        torch.topk(torch.rand(2, 10), k=11, dim=1)
    assert "larger than the number of classes" in cvkit.errors._explain_torch_error(str(info.value))


def test_other_runtime_errors_are_not_explained():
    assert cvkit.errors._explain_torch_error("shape '[1, 3]' is invalid for input of size 5") is None


def test_ipython_shows_a_device_mix_up_as_one_line_and_other_runtime_errors_in_full(capfd):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        cvkit.errors.use_short_errors()
        shell.run_cell(f"raise RuntimeError({DEVICE_MIX!r})")
        assert capfd.readouterr().err.strip().startswith("RuntimeError: the model and its input are on different")
        shell.run_cell("raise RuntimeError('shape is invalid')")
        assert "Traceback" in "".join(capfd.readouterr())
    finally:
        InteractiveShell.clear_instance()
