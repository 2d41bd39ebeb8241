"""Lab 1: the kit's images and helpers against torchvision's own preprocessing, on the stand-in weights."""

from __future__ import annotations

import cvkit
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights, ResNet50_Weights, resnet18
from torchvision.transforms import functional as TF

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
    left, top, right, bottom = cvkit.crop_box(size, preprocess)
    assert abs(left - first) < 3 and abs(right - 1 - last) < 3
    assert bottom - top == pytest.approx(right - left) and (top + bottom) / 2 == pytest.approx(size[1] / 2)


def test_show_crops_dims_what_the_crop_drops_and_keeps_the_rest(monkeypatch):
    shown = []
    monkeypatch.setattr(cvkit.core, "show_grid", lambda images, titles=None, **kw: shown.extend(images))
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


def test_notebook_runs_with_resnet50_v2_swapped_in():
    from nbrun import execute_with

    nb = execute_with("01_image_classification.ipynb", {
        "models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1": "models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2",
        # two images keep the run short: the tabby for the convolution, the hammer for the crop section
        "samples = cvkit.sample_images(1)": 'samples = [s for s in cvkit.sample_images(1) if s.name in ("tabby_cat", "hammer")]',
    })
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    assert "ResNet50_Weights.IMAGENET1K_V2: 25.6 M parameters" in printed
    assert "16 residual blocks" in printed
    checks = [cell for cell in nb.cells if "check" in cell.metadata.get("tags", [])]
    verdicts = ["".join(out.get("text", "") for out in cell.outputs).strip() for cell in checks]
    assert len(checks) == 3 and all(v.startswith("Exercise ") and v.endswith(": correct") for v in verdicts), verdicts


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


# ------------------------------------------------------------------ exercise checks


def _true_convolution(image, kernel):
    """The textbook convolution, built independently: the transposed cross-correlation is a convolution."""
    return torch.nn.functional.conv_transpose2d(image, kernel, padding=kernel.shape[-1] // 2)[0, 0]


@pytest.fixture(scope="module")
def conv_case():
    torch.manual_seed(0)
    image = torch.rand(1, 1, 12, 9)
    kernel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    return image, kernel


def test_check_convolution_accepts_the_textbook_convolution(conv_case, capsys):
    image, kernel = conv_case
    assert cvkit.check_convolution(_true_convolution(image, kernel), image, kernel) is True
    assert capsys.readouterr().out == "Exercise 1: correct\n"


def test_check_convolution_accepts_a_batch_shaped_answer(conv_case, capsys):
    image, kernel = conv_case
    assert cvkit.check_convolution(_true_convolution(image, kernel)[None, None], image, kernel) is True


@pytest.mark.parametrize(("make_answer", "says"), [
    (lambda image, kernel: None, "my_conv is still None"),
    (lambda image, kernel: "edges", "should be a tensor, not str"),
    (lambda image, kernel: torch.zeros(10, 7), "has shape (10, 7), expected (12, 9): pad the image by 1 pixels"),
    (lambda image, kernel: torch.nn.functional.conv2d(image, kernel, padding=1), "that is the cross-correlation"),
    (lambda image, kernel: _true_convolution(image, kernel) + torch.eye(12, 9), "9 of 108 values differ, the first at row 0"),
], ids=["none", "not-a-tensor", "wrong-shape", "cross-correlation", "some-values-wrong"])
def test_check_convolution_says_what_is_wrong_without_raising(conv_case, capsys, make_answer, says):
    image, kernel = conv_case
    assert cvkit.check_convolution(make_answer(image, kernel), image, kernel) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 1: not yet - ") and says in out


CATEGORIES = ["crane", "tabby", "crane", "lynx", "bee", "fly", "hammer"]  # "crane" twice, as in ImageNet's names
PROBS = torch.tensor([[0.05, 0.40, 0.10, 0.20, 0.15, 0.06, 0.04], [0.30, 0.02, 0.03, 0.05, 0.25, 0.15, 0.20]])


def test_check_top5_accepts_the_names_sorted_by_probability(capsys):
    answer = [["tabby", "lynx", "bee", "crane", "fly"], ["crane", "bee", "hammer", "fly", "lynx"]]
    assert cvkit.check_top5(answer, PROBS, CATEGORIES) is True
    assert capsys.readouterr().out == "Exercise 2: correct\n"


@pytest.mark.parametrize(("answer", "says"), [
    (None, "my_top5 is still None"),
    ([["tabby", "lynx", "bee", "crane", "fly"]], "should be a list of 2 lists"),
    ([["tabby", "lynx", "bee", "crane"], ["crane", "bee", "hammer", "fly", "lynx"]], "image 0: expected a list of 5"),
    ([[1, 3, 4, 0, 5], ["crane", "bee", "hammer", "fly", "lynx"]], "image 0: expected a list of 5 class names (strings)"),
    ([["tabby", "lynx", "bee", "crane", "fly"], ["crane", "bee", "hammer", "fly", "wolf"]], "image 1: 'wolf' is not one"),
    ([["lynx", "tabby", "bee", "crane", "fly"], ["crane", "bee", "hammer", "fly", "lynx"]], "image 0: the right classes, but"),
    ([["tabby", "lynx", "bee", "crane", "hammer"], ["crane", "bee", "hammer", "fly", "lynx"]], "image 0: not the 5 most"),
], ids=["none", "too-few-images", "too-few-names", "indices", "unknown-name", "wrong-order", "wrong-class"])
def test_check_top5_says_what_is_wrong_without_raising(capsys, answer, says):
    assert cvkit.check_top5(answer, PROBS, CATEGORIES) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 2: not yet - ") and says in out
    assert "0.40" not in out and "0.4" not in out  # no probabilities: the check gives hints, not the answer


@pytest.fixture(scope="module")
def gradcam_case():
    """A random ResNet-18, an image with texture in one corner, Captum's Grad-CAM for the most probable class whose
    map has both signs (so that a missing ReLU shows), and the layer4 output and gradient to redo it by hand."""
    from captum.attr import LayerGradCam

    torch.manual_seed(0)
    model = resnet18().eval()
    image = torch.zeros(1, 3, 128, 128)
    image[:, :, :64, :64] = 3 * torch.randn(1, 3, 64, 64)
    gradcam = LayerGradCam(model, model.layer4)
    for target in model(image)[0].argsort(descending=True).tolist():
        signed = gradcam.attribute(image, target=target)[0, 0]
        if (signed < 0).any() and (signed > 0).any():
            break
    reference = gradcam.attribute(image, target=target, relu_attributions=True)[0, 0].detach()
    kept = {}
    hook = model.layer4.register_forward_hook(lambda module, inputs, output: kept.update(A=output))
    score = model(image)[0, target]
    hook.remove()
    (gradient,) = torch.autograd.grad(score, kept["A"])
    return reference, kept["A"].detach(), gradient


def test_check_gradcam_accepts_grad_cam_computed_by_hand(gradcam_case, capsys):
    reference, activations, gradient = gradcam_case
    by_hand = (gradient.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1)[0].relu()
    assert reference.shape == (4, 4) and reference.max() > 0  # the case is not trivial
    assert cvkit.check_gradcam(by_hand, reference) is True
    assert capsys.readouterr().out == "Exercise 4: correct\n"


@pytest.mark.parametrize(("mistake", "says"), [
    ("none", "my_cam is still None"),
    ("flat", "has shape (16,), expected (4, 4)"),
    ("no-relu", "negative values: Grad-CAM keeps only the positive part"),
    ("sum", "times the reference: average the gradients over the positions"),
    ("plain-activations", "differs from Captum's map"),
])
def test_check_gradcam_says_what_is_wrong_without_raising(gradcam_case, capsys, mistake, says):
    reference, activations, gradient = gradcam_case
    weighted = (gradient.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1)[0]
    assert (weighted < 0).any()  # else the no-relu mistake would go unseen
    answer = {
        "none": None,
        "flat": weighted.relu().flatten(),
        "no-relu": weighted,
        "sum": (gradient.sum(dim=(2, 3), keepdim=True) * activations).sum(dim=1)[0].relu(),
        "plain-activations": activations.sum(dim=1)[0],
    }[mistake]
    assert cvkit.check_gradcam(answer, reference) is False
    out = capsys.readouterr().out
    assert out.startswith("Exercise 4: not yet - ") and says in out
