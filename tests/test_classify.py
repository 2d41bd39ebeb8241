"""Lab 1: the kit's images and helpers against torchvision's own preprocessing, on the stand-in weights."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cvkit
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights, ResNet50_Weights, resnet18
from torchvision.transforms import functional as TF

pytestmark = pytest.mark.standins("resnet")  # the stand-in models its tests load

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ResNet18_Weights.IMAGENET1K_V1
SWAPPED = ResNet50_Weights.IMAGENET1K_V2  # the exercise's model: other resize size, other block type


def _x_ramp(width: int, height: int) -> Image.Image:
    """An RGB image whose red channel is its column index (0..255 across the width)."""
    red = np.tile(np.linspace(0, 255, width).round().astype(np.uint8), (height, 1))
    return Image.fromarray(np.stack([red, np.zeros_like(red), np.zeros_like(red)], axis=2))


def test_kit_images_reach_the_model_in_rgb_as_an_independent_decoder_sees_them():
    import cv2

    preprocess = WEIGHTS.transforms()
    for sample in cvkit.sample_images(1):
        ours = preprocess(cvkit.load_image(sample.path))
        bgr = cv2.imread(str(sample.path), cv2.IMREAD_COLOR)  # OpenCV decodes to BGR, EXIF orientation applied
        reference = preprocess(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        assert ours.shape == reference.shape == (3, 224, 224)
        assert (ours - reference).abs().mean() < 0.02, sample.name


def test_weights_transforms_differ_between_the_lab_and_the_swapped_model_only_in_resize_size():
    lab, swapped = WEIGHTS.transforms(), SWAPPED.transforms()
    assert (lab.resize_size, lab.crop_size, swapped.resize_size, swapped.crop_size) == ([256], [224], [232], [224])
    assert lab.mean == swapped.mean == [0.485, 0.456, 0.406] and lab.std == swapped.std == [0.229, 0.224, 0.225]


def test_standin_loads_through_the_real_weights_api_without_network():
    model = resnet18(weights=WEIGHTS).eval()  # the swapped ResNet-50's stand-in loads in the notebook test below
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


@pytest.mark.parametrize("weights", [WEIGHTS, SWAPPED], ids=["resize256", "resize232"])
@pytest.mark.parametrize("size", [(640, 320), (300, 500)], ids=["landscape", "portrait"])
def test_crop_box_is_the_part_of_the_image_the_weights_transforms_keep(weights, size):
    preprocess = weights.transforms()
    image = _x_ramp(*size)
    kept = TF.center_crop(TF.resize(image, preprocess.resize_size), preprocess.crop_size)
    first, last = np.asarray(kept)[0, [0, -1], 0] / 255 * (size[0] - 1)  # the kept columns, in original pixels
    left, top, right, bottom = cvkit.classify.crop_box(size, preprocess)
    assert abs(left - first) < 3 and abs(right - 1 - last) < 3
    assert bottom - top == pytest.approx(right - left) and (top + bottom) / 2 == pytest.approx(size[1] / 2)


def test_show_crops_dims_what_the_crop_drops_and_keeps_the_rest(monkeypatch):
    shown = []
    monkeypatch.setattr(cvkit.plots, "show_grid", lambda images, titles=None, **kw: shown.extend(images))
    image = Image.new("RGB", (400, 200), (200, 200, 200))
    cvkit.show_crops([image], WEIGHTS.transforms(), ["grey"])
    pixels = np.asarray(shown[0])
    assert (pixels[100, 5] < 100).all() and (pixels[100, 395] < 100).all()  # dimmed left and right margins
    assert (pixels[100, 200] == 200).all()  # the centre is untouched


@pytest.mark.parametrize("weights", [WEIGHTS, SWAPPED], ids=["resize256", "resize232"])
def test_padded_image_passes_the_weights_centre_crop_whole(weights):
    preprocess = weights.transforms()
    pixels = np.zeros((120, 320, 3), dtype=np.uint8)
    pixels[..., 0] = 255
    pixels[:, :8] = pixels[:, -8:] = (0, 0, 255)  # blue ends: both must survive the crop
    padded = cvkit.pad_to_keep_whole(Image.fromarray(pixels), preprocess)
    seen = np.asarray(TF.center_crop(TF.resize(padded, preprocess.resize_size), preprocess.crop_size)).astype(int)
    middle = seen[seen.shape[0] // 2]
    blue = np.flatnonzero((middle[:, 2] > 150) & (middle[:, 0] < 100))
    assert blue.min() < 10 and blue.max() > preprocess.crop_size[0] - 10 and len(blue) >= 8
    assert (seen[0, :, 0] < 200).all() and (seen[-1, :, 0] < 200).all()  # padding above and below, no red


def test_padding_reaches_the_model_as_zeros():
    preprocess = WEIGHTS.transforms()
    tensor = preprocess(cvkit.pad_to_keep_whole(Image.new("RGB", (100, 10), (255, 255, 255)), preprocess))
    assert tensor[:, :5, :].abs().max() < 0.01


def test_to_picture_undoes_the_normalisation():
    preprocess = WEIGHTS.transforms()
    image = Image.new("RGB", (300, 300), (10, 128, 250))
    picture = cvkit.to_picture(preprocess(image), preprocess)
    assert picture.shape == (224, 224, 3)
    assert np.allclose(picture[100, 100], np.array([10, 128, 250]) / 255, atol=1e-3)


def test_top5_table_has_one_row_per_image_and_shades_cells_by_probability():
    styled = cvkit.top5_table(["cat", "bee"], [["tabby", "lynx"], ["bee", "fly"]], torch.tensor([[0.9, 0.1], [0.5, 0.4]]))
    assert styled.data.to_dict("list") == {"top-1": ["tabby (0.90)", "bee (0.50)"], "top-2": ["lynx (0.10)", "fly (0.40)"]}
    assert list(styled.data.index) == ["cat", "bee"]
    styles = styled._compute().ctx  # (row, column) -> [(property, value)]
    shade = {cell: dict(styles[cell])["background-color"] for cell in [(0, 0), (0, 1), (1, 0)]}
    assert shade[(0, 0)] != shade[(0, 1)] != shade[(1, 0)]  # 0.9, 0.1 and 0.5 get different shades


def test_top5_table_rejects_names_and_probabilities_of_different_shapes():
    with pytest.raises(ValueError, match="expected 2 rows"):
        cvkit.top5_table(["cat", "bee"], [["tabby", "lynx"], ["bee", "fly"]], torch.rand(2, 3))


def test_classification_scorecard_has_boolean_top1_and_top5_hits():
    names = [["tabby"] + ["x"] * 4, ["x", "y", "lemon", "z", "w"], ["x"] * 5]
    card = cvkit.classification_scorecard(["cat", "fruit", "bee"], names, [["tabby"], ["orange", "lemon"], ["bee"]])
    assert card["top-1 hit"].tolist() == [True, False, False] and card["top-5 hit"].tolist() == [True, True, False]
    assert card["top-1 hit"].dtype.kind == card["top-5 hit"].dtype.kind == "b" and card.loc["fruit", "expected"] == "orange | lemon"


def test_highlight_hits_colours_true_green_and_false_red_in_boolean_columns_only():
    import pandas as pd

    styled = cvkit.highlight_hits(pd.DataFrame({"top-1": ["a", "b"], "hit": [True, False]}, index=["x", "y"]))
    styles = styled._compute().ctx  # (row, column) -> [(property, value)]
    assert ("background-color", "#c6efce") in styles[(0, 1)] and ("background-color", "#ffc7ce") in styles[(1, 1)]
    assert (0, 0) not in styles and (1, 0) not in styles


@pytest.mark.parametrize(("rows", "written"), [(8, 8 * 17), (16, 0)], ids=["values-written", "too-many-cells"])
def test_show_heatmap_names_rows_and_columns_and_writes_values_that_fit(rows, written, monkeypatch):
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "show", lambda: figures.append(plt.gcf()))
    table = pd.DataFrame(np.random.default_rng(0).random((rows, 17)), index=[f"block{i}" for i in range(rows)],
                         columns=[f"image{j}" for j in range(17)])
    cvkit.show_heatmap(table, "title", "ratio")
    ax = figures[0].axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table.index)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(table.columns)
    assert len(ax.texts) == written
    plt.close("all")


# ------------------------------------------------------------------ look inside: feature maps and Grad-CAM figures


def _capture_figures(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "show", lambda: figures.append(plt.gcf()))
    return figures


def test_show_feature_maps_shows_each_stages_strongest_channels_strongest_first(monkeypatch):
    figures = _capture_figures(monkeypatch)
    early = torch.zeros(1, 6, 8, 8)
    early[0, 4], early[0, 1], early[0, 2] = 3.0, 2.0, 1.0
    late = torch.arange(5.0).view(1, 5, 1, 1).expand(1, 5, 2, 2)
    cvkit.show_feature_maps(np.zeros((16, 16, 3)), {"layer1": early, "layer4": late}, n=3)
    axes = np.array(figures[0].axes).reshape(2, 4)
    assert [ax.get_title() for ax in axes[0, 1:]] == ["channel 4", "channel 1", "channel 2"]
    assert [ax.get_title() for ax in axes[1, 1:]] == ["channel 4", "channel 3", "channel 2"]
    assert axes[0, 0].get_title(loc="left") == "layer1: 6 maps of 8 x 8"
    np.testing.assert_array_equal(axes[0, 1].images[0].get_array(), early[0, 4].numpy())


def test_show_cams_scales_each_map_to_its_maximum_and_leaves_zero_transparent(monkeypatch):
    figures = _capture_figures(monkeypatch)
    cams = torch.zeros(2, 1, 4, 4)
    cams[0, 0, 1, 2] = 8.0
    cvkit.show_cams([np.ones((4, 4, 3))] * 2, cams, ["a", "b"], ncols=2)  # the second map is all zero
    first, second = figures[0].axes
    overlay = first.images[1]
    assert overlay.get_array().max() == 1.0 and overlay.get_alpha()[0, 0] == 0.0 and overlay.get_alpha()[1, 2] > 0.5
    assert np.isfinite(second.images[1].get_array()).all() and (second.images[1].get_alpha() == 0).all()
    assert [first.get_title(), second.get_title()] == ["a", "b"]


def test_show_cams_rejects_a_map_count_unlike_the_picture_count():
    with pytest.raises(ValueError, match="2 pictures but 1 maps"):
        cvkit.show_cams([np.ones((4, 4, 3))] * 2, torch.zeros(1, 1, 4, 4))


# ------------------------------------------------------------------ exercise checks: right answers, wrong answers


def _true_convolution(image, kernel):
    """The textbook convolution of an (H, W) image with a 3 x 3 kernel, centred and zero padded, built independently:
    the transposed cross-correlation is a convolution."""
    return torch.nn.functional.conv_transpose2d(image[None, None], kernel[None, None], padding=1)[0, 0]


def _literal_convolution(image, kernel):
    """The lecture's formula as written: out(x, y) = sum over i, j from 0 of I(x - i, y - j) K(i, j), zero outside."""
    rows, columns = image.shape
    out = torch.zeros(rows, columns)
    for x in range(rows):
        for y in range(columns):
            for i in range(3):
                for j in range(3):
                    if x - i >= 0 and y - j >= 0:
                        out[x, y] += image[x - i, y - j] * kernel[i, j]
    return out


def _raise(*args, **kwargs):
    raise IndexError("index 3 is out of bounds")


@pytest.mark.parametrize("my_conv", [_true_convolution, _literal_convolution,
                                     lambda image, kernel: _true_convolution(image, kernel)[None, None]],
                         ids=["kernel-centred", "indices-from-0-as-written", "batch-shaped"])
def test_check_convolution_accepts_the_lectures_convolution_in_either_index_convention(my_conv, capsys):
    assert cvkit.check_convolution(my_conv) is True
    assert capsys.readouterr().out == "Exercise 1: correct\n"


@pytest.mark.parametrize(("my_conv", "says"), [
    (None, "my_conv is still None: define the function my_conv(image, kernel)"),
    (torch.zeros(7, 10), "my_conv should be a function my_conv(image, kernel), not a Tensor"),
    (lambda image, kernel: None, "my_conv(image, kernel) returned None"),
    (lambda image, kernel: "edges", "my_conv(image, kernel) should return a tensor, not a str"),
    (lambda image, kernel: torch.zeros(5, 8), "returned shape (5, 8), expected (7, 10): zero padding keeps the size"),
    (lambda image, kernel: torch.nn.functional.conv2d(image[None, None], kernel[None, None], padding=1),
     "that is the cross-correlation F.conv2d computes"),
    (lambda image, kernel: _true_convolution(image, kernel.flip(0)), "values differ, the first at row 0"),
    (_raise, "my_conv(image, kernel) raised IndexError: index 3 is out of bounds"),
], ids=["none", "a-tensor", "returns-none", "returns-a-string", "no-padding", "cross-correlation", "one-axis-flipped",
        "raises"])
def test_check_convolution_says_what_is_wrong_without_raising(my_conv, says, capsys):
    assert cvkit.check_convolution(my_conv) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 1: not yet - ") and says in out


def _top5_by_sorting(probs, categories, k=5):
    return [[categories[i] for i in row[:k]] for row in probs.argsort(dim=1, descending=True).tolist()]


def test_check_top5_accepts_the_names_sorted_by_probability(capsys):
    assert cvkit.check_top5(_top5_by_sorting) is True
    assert capsys.readouterr().out == "Exercise 2: correct\n"


@pytest.mark.parametrize(("my_top5", "says"), [
    (None, "my_top5 is still None"),
    ([["tabby", "tiger cat", "Egyptian cat", "lynx", "tabby"]], "should be a function my_top5(probs, categories, k=5)"),
    (lambda probs, categories: _top5_by_sorting(probs, categories), "my_top5(probs, categories, k=3) raised TypeError"),
    (lambda probs, categories, k=5: _top5_by_sorting(probs, categories), "k=3), row 0: expected a list of 3 class names"),
    (lambda probs, categories, k=5: _top5_by_sorting(probs, categories, k)[:1], "should return a list of 3 lists"),
    (lambda probs, categories, k=5: probs.argsort(dim=1, descending=True)[:, :k].tolist(),
     "row 0: expected class names (strings): look each index up in categories"),
    (lambda probs, categories, k=5: [[n.upper() for n in row] for row in _top5_by_sorting(probs, categories, k)],
     "is not one of the categories given to my_top5"),
    (lambda probs, categories, k=5: [row[::-1] for row in _top5_by_sorting(probs, categories, k)],
     "row 0: the right classes, but list them from the most probable down"),
    (lambda probs, categories, k=5: _top5_by_sorting(-probs, categories, k), "row 0: not the 5 most probable classes"),
    (_raise, "my_top5(probs, categories) raised IndexError"),
], ids=["none", "a-list", "no-k", "k-ignored", "too-few-rows", "indices", "unknown-names", "wrong-order",
        "least-probable", "raises"])
def test_check_top5_says_what_is_wrong_without_raising(my_top5, says, capsys):
    assert cvkit.check_top5(my_top5) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 2: not yet - ") and says in out


def _gradcam_by_hand(model, layer, x, target, reduce="mean", relu=True, weighted=True):
    """Grad-CAM written out (Selvaraju et al., 2017), or, with other arguments, one of its usual mistakes."""
    kept = {}
    hook = layer.register_forward_hook(lambda module, inputs, output: kept.update(A=output))
    score = model(x)[0, target]
    hook.remove()
    (gradient,) = torch.autograd.grad(score, kept["A"])
    channel_weights = getattr(gradient, reduce)(dim=(2, 3), keepdim=True) if weighted else 1.0
    cam = (channel_weights * kept["A"]).sum(dim=1)[0]
    return cam.relu() if relu else cam


@pytest.fixture(scope="module")
def random_resnet():
    torch.manual_seed(0)
    return resnet18().eval()


def test_check_gradcam_accepts_grad_cam_computed_by_hand(random_resnet, capsys):
    assert cvkit.check_gradcam(_gradcam_by_hand, random_resnet, random_resnet.layer4) is True
    assert capsys.readouterr().out == "Exercise 4: correct\n"


@pytest.mark.parametrize(("my_gradcam", "says"), [
    (None, "my_gradcam is still None"),
    (torch.zeros(7, 7), "my_gradcam should be a function my_gradcam(model, layer, x, target), not a Tensor"),
    (lambda *args: _gradcam_by_hand(*args).flatten(), "returned shape (25,), expected (5, 5)"),
    (lambda *args: _gradcam_by_hand(*args, relu=False), "negative values: Grad-CAM keeps only the positive part"),
    (lambda *args: _gradcam_by_hand(*args, reduce="sum"), "25 times Captum's: average the gradients over the positions"),
    (lambda *args: _gradcam_by_hand(*args, weighted=False), "differs from Captum's"),
    (lambda model, layer, x, target: _gradcam_by_hand(model, layer, x, 0), "differs from Captum's"),
    (_raise, "my_gradcam(model, layer, x, target) raised IndexError"),
], ids=["none", "a-tensor", "flat", "no-relu", "sum", "plain-activations", "another-class", "raises"])
def test_check_gradcam_says_what_is_wrong_without_raising(random_resnet, my_gradcam, says, capsys):
    assert cvkit.check_gradcam(my_gradcam, random_resnet, random_resnet.layer4) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 4: not yet - ") and says in out


# ------------------------------------------------------------------ the notebook, run top to bottom and inspected

NOTEBOOK = ROOT / "notebooks" / "01_image_classification.ipynb"
MODEL_LINE = "models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1"
SAMPLES_LINE = "samples = cvkit.sample_images(1)"

RUNS = {  # run name -> (the edits a student would make, what section 4 prints, the model's residual blocks)
    "resnet18": ({}, "ResNet18_Weights.IMAGENET1K_V1: 11.7 M parameters, 1000 classes", 8),
    "resnet50-v2": ({
        MODEL_LINE: "models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2",
        # two images keep the run short: the tabby for the convolution, the hammer for the crop section
        SAMPLES_LINE: 'samples = [s for s in cvkit.sample_images(1) if s.name in ("tabby_cat", "hammer")]',
    }, "ResNet50_Weights.IMAGENET1K_V2: 25.6 M parameters, 1000 classes", 16),
}
KEPT = {  # name -> the expression the notebook's kernel evaluates, once the lab and its exercises have run
    "device": "str(device)", "dtype": "str(dtype)", "sample_names": "[s.name for s in samples]",
    "image_names": "image_names", "image_modes": "[im.mode for im in images]", "gray": "gray", "edges": "edges",
    "n_params": "n_params", "meta_params": 'weights.meta["num_params"]', "crop_size": "preprocess.crop_size[0]",
    "tensor": "tensor", "categories": "categories", "logits": "logits.float().cpu()", "probs": "probs",
    "top5_probs": "top5_probs", "top5_indices": "top5_indices", "top5_names": "top5_names", "scorecard": "scorecard",
    "blocks": "list(blocks)", "ratios": "ratios", "kernels": "kernels",
    "feature_shapes": "{name: tuple(f.shape) for name, f in features.items()}",
    "grad_cams": "grad_cams.detach().float().cpu()", "raccoon_probs": "raccoon_probs",
}


def _keep(run: str) -> str:
    """The code that saves the KEPT variables of a run, once its notebook has run, to _kept_file(run)."""
    return (f"import torch as _torch\n_torch.save({{{', '.join(f'{k!r}: {v}' for k, v in KEPT.items())}}}, "
            f"{str(_kept_file(run))!r})")


def _kept_file(run: str) -> Path:
    return Path(os.environ["CVKIT_STANDINS_ROOT"]) / f"{NOTEBOOK.stem}-{run}.pt"


pytestmark = [pytestmark, pytest.mark.notebook_run(NOTEBOOK.name, _keep("resnet18"))]  # nbval's run serves "resnet18"


@pytest.fixture(scope="module", params=list(RUNS))
def lab(request):
    """(the executed notebook, its variables named in KEPT, the run's RUNS entry), for the lab's model as committed
    (nbval's run, see nbrun.executed) and for ResNet-50 V2 swapped in; the variables are saved by code run after the
    last cell."""
    from nbrun import execute_with, executed

    edits, keep = RUNS[request.param][0], _keep(request.param)
    nb = execute_with(NOTEBOOK.name, edits, then=keep) if edits else executed(NOTEBOOK.name, keep)
    return nb, torch.load(_kept_file(request.param), weights_only=False), RUNS[request.param]


def _printed(nb, tag=None) -> list[str]:
    """What each code cell (tagged `tag`, if given) printed."""
    return ["".join(out.get("text", "") for out in cell.outputs) for cell in nb.cells
            if cell.cell_type == "code" and (tag is None or tag in cell.metadata.get("tags", []))]


def test_lab_runs_on_cpu_or_cuda_in_float16_bfloat16_or_float32(lab):
    _, kept, _ = lab
    assert kept["device"] in ("cpu", "cuda") or kept["device"].startswith("cuda:")
    assert kept["dtype"] in ("torch.float16", "torch.bfloat16", "torch.float32")


def test_lab_loads_every_sample_image_in_rgb(lab):
    _, kept, _ = lab
    assert kept["image_names"] == kept["sample_names"] and len(kept["image_modes"]) == len(kept["sample_names"])
    assert set(kept["image_modes"]) == {"RGB"}


def test_lab_edge_map_has_the_grayscale_images_shape(lab):
    _, kept, _ = lab
    assert kept["edges"].shape == kept["gray"].shape and kept["gray"].shape[:2] == (1, 1)


def test_lab_model_has_the_parameters_its_weights_metadata_names(lab):
    nb, kept, (_, says, _) = lab
    assert kept["n_params"] == kept["meta_params"] and says in "".join(_printed(nb))


def test_lab_model_input_is_a_float32_square_of_the_weights_crop_size(lab):
    _, kept, _ = lab
    side = kept["crop_size"]
    assert kept["tensor"].shape == (3, side, side) and kept["tensor"].dtype == torch.float32


def test_lab_gives_each_image_one_probability_per_class_summing_to_one(lab):
    _, kept, _ = lab
    images, probs = len(kept["image_names"]), kept["probs"]
    assert kept["logits"].shape == probs.shape == (images, len(kept["categories"])) == (images, 1000)
    assert ((probs >= 0) & (probs <= 1)).all() and torch.allclose(probs.sum(dim=1), torch.ones(images), atol=1e-4)


def test_lab_top5_is_sorted_and_named_after_its_indices(lab):
    _, kept, _ = lab
    top5_probs, indices = kept["top5_probs"], kept["top5_indices"]
    assert top5_probs.shape == indices.shape == (len(kept["image_names"]), 5)
    assert (top5_probs[:, :-1] >= top5_probs[:, 1:]).all()
    assert torch.equal(kept["probs"].gather(1, indices), top5_probs)
    assert kept["top5_names"] == [[kept["categories"][i] for i in row] for row in indices.tolist()]


def test_lab_scorecard_counts_every_top1_hit_as_a_top5_hit(lab):
    _, kept, _ = lab
    card = kept["scorecard"]
    assert list(card.index) == kept["image_names"] and (card["top-1 hit"] <= card["top-5 hit"]).all()


def test_lab_measures_every_residual_block_on_every_image(lab):
    nb, kept, (*_, blocks) = lab
    assert len(kept["blocks"]) == blocks and f"{blocks} residual blocks" in "".join(_printed(nb))
    ratios = kept["ratios"]
    assert ratios.shape == (blocks, len(kept["image_names"])) and (ratios.to_numpy() >= 0).all()


def test_lab_first_layer_kernels_read_the_three_colour_channels(lab):
    _, kept, _ = lab
    assert kept["kernels"].ndim == 4 and kept["kernels"].shape[1] == 3


def test_lab_later_feature_maps_are_coarser(lab):
    _, kept, _ = lab
    shapes = kept["feature_shapes"]
    assert shapes["layer4"][-1] < shapes["layer1"][-1] and shapes["layer4"][-2] < shapes["layer1"][-2]


def test_lab_draws_one_non_negative_grad_cam_map_per_image(lab):
    _, kept, _ = lab
    cams = kept["grad_cams"]
    assert cams.shape[:2] == (len(kept["image_names"]), 1) and (cams >= 0).all()


def test_lab_raccoon_gets_probabilities_that_sum_to_one(lab):
    _, kept, _ = lab
    assert kept["raccoon_probs"].shape == (1, 1000)
    assert torch.isclose(kept["raccoon_probs"].sum(), torch.tensor(1.0), atol=1e-4)


def test_lab_solutions_are_correct_for_every_check(lab):
    nb, _, _ = lab
    verdicts = [text.strip() for text in _printed(nb, "check")]
    assert verdicts == ["Exercise 1: correct", "Exercise 2: correct", "Exercise 4: correct"]


# ------------------------------------------------------------------ the lab's own variables are no answer


def test_check_convolution_says_not_yet_to_the_labs_own_variables(lab, capsys):
    _, kept, _ = lab
    edges = kept["edges"]
    for pasted in (edges, edges[0, 0], lambda image, kernel: edges[0, 0], lambda image, kernel: -edges[0, 0]):
        assert cvkit.check_convolution(pasted) is False
        assert capsys.readouterr().out.startswith("Exercise 1: not yet - ")


def test_check_top5_says_not_yet_to_the_labs_own_variables(lab, capsys):
    _, kept, _ = lab
    names = kept["top5_names"]
    for pasted in (names, lambda probs, categories, k=5: names, lambda probs, categories, k=5: [row[:k] for row in names]):
        assert cvkit.check_top5(pasted) is False
        assert capsys.readouterr().out.startswith("Exercise 2: not yet - ")


def test_check_gradcam_says_not_yet_to_the_labs_own_variables(lab, random_resnet, capsys):
    _, kept, _ = lab
    cams = kept["grad_cams"]
    for pasted in (cams[0, 0], lambda model, layer, x, target: cams[0, 0], lambda model, layer, x, target: cams[0]):
        assert cvkit.check_gradcam(pasted, random_resnet, random_resnet.layer4) is False
        assert capsys.readouterr().out.startswith("Exercise 4: not yet - ")


# ------------------------------------------------------------------ the hour in class


def _notebook():
    import nbformat

    return nbformat.read(NOTEBOOK, as_version=4)


def _parts(nb) -> list[tuple[str, str, str]]:
    """(part, cell type, text) for each code cell and each heading's piece of a markdown cell, the part being "core",
    "going further" (under a heading that says so, until the next heading of its level or above) or "after class"
    (the questionnaire)."""
    parts, marked, after = [], {2: False, 3: False}, False
    for cell in nb.cells:
        pieces = re.split(r"(?m)^(?=#{2,3} )", cell.source) if cell.cell_type == "markdown" else [cell.source]
        for piece in pieces:
            heading = re.match(r"(#{2,3}) (.*)", piece) if cell.cell_type == "markdown" else None
            if heading:
                after = after or heading[2] == "Questionnaire"
                level, going_further = len(heading[1]), "going further" in heading[2]
                marked = {2: going_further, 3: False} if level == 2 else {**marked, 3: going_further}
            part = "after class" if after else "going further" if marked[2] or marked[3] else "core"
            parts.append((part, cell.cell_type, piece))
    return parts


def test_plan_gives_minutes_to_every_section_in_the_part_its_heading_names():
    nb = _notebook()
    rows = re.findall(r"(?m)^\| (core|going further|after class) \| (.*?) \| (\d+) \|$", nb.cells[0].source)
    assert rows and all(int(minutes) > 0 for *_, minutes in rows)
    planned = {}
    for part, what, _ in rows:
        numbers = re.match(r"(\d+)(?: to (\d+))?\. ", what)
        if numbers:
            planned.update(dict.fromkeys(range(int(numbers[1]), int(numbers[2] or numbers[1]) + 1), part))
    sections = {int(n): part for part, kind, piece in _parts(nb) if kind == "markdown"
                for n in re.findall(r"(?m)^## (\d+)\. ", piece)}
    assert planned == sections
    exercises = {int(n): part for part, kind, piece in _parts(nb) if kind == "markdown"
                 for n in re.findall(r"(?m)^### Exercise (\d+): ", piece)}
    assert exercises == {1: "core", 2: "core", 3: "going further", 4: "going further", 5: "going further",
                         6: "going further"}
    assert "| core | Exercises 1 and 2 | 15 |" in nb.cells[0].source
    assert "| going further | Exercises 3 to 6 | 45 |" in nb.cells[0].source


def test_real_weights_tier_pads_the_images_the_notebook_shows_padded():
    import realweights

    padded = [name for c in _notebook().cells if c.cell_type == "code" and "pad_to_keep_whole" in c.source
              for name in re.findall(r'image_names\.index\("([^"]+)"\)', c.source)]
    assert realweights.LAB1_PADDED == padded == ["hammer"]
