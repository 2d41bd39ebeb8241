"""Lab 1: the kit's preprocessing and helpers against torchvision's own, on the stand-in weights."""

from __future__ import annotations

import cvkit
import torch
from torchvision.models import ResNet18_Weights, resnet18

WEIGHTS = ResNet18_Weights.IMAGENET1K_V1


def test_kit_images_reach_the_model_in_rgb_as_an_independent_decoder_sees_them():
    import cv2
    from PIL import Image

    preprocess = WEIGHTS.transforms()
    for sample in cvkit.sample_images(1):
        ours = preprocess(cvkit.load_image(sample.path))
        bgr = cv2.imread(str(sample.path), cv2.IMREAD_COLOR)  # OpenCV decodes to BGR, EXIF orientation applied
        reference = preprocess(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        assert ours.shape == reference.shape == (3, 224, 224)
        assert (ours - reference).abs().mean() < 0.02, sample.name


def test_weights_transforms_are_imagenet_resize_crop_and_normalisation():
    preprocess = WEIGHTS.transforms()
    assert (preprocess.resize_size, preprocess.crop_size) == ([256], [224])
    assert preprocess.mean == [0.485, 0.456, 0.406] and preprocess.std == [0.229, 0.224, 0.225]


def test_standin_loads_through_the_real_weights_api_without_network():
    model = resnet18(weights=WEIGHTS).eval()
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_top_k_returns_names_and_probabilities_in_descending_order():
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])
    assert cvkit.top_k(probs, ["a", "b", "c"], k=2) == [
        [("b", 0.6000000238418579), ("c", 0.30000001192092896)], [("a", 0.5), ("c", 0.30000001192092896)]]


def test_top_k_rejects_probabilities_that_do_not_match_the_class_list():
    import pytest

    with pytest.raises(ValueError, match="shape"):
        cvkit.top_k(torch.rand(2, 5), ["a", "b"], k=1)


def test_classification_scorecard_counts_top1_and_top5_hits():
    preds = [[("tabby", 0.5)] + [("x", 0.1)] * 4, [("x", 0.5), ("y", 0.2), ("lemon", 0.1), ("z", 0.1), ("w", 0.1)],
             [("x", 0.5)] * 5]
    rows = cvkit.classification_scorecard(["cat", "fruit", "bee"], preds, [["tabby"], ["orange", "lemon"], ["bee"]])
    assert [(r[3], r[4]) for r in rows] == [("yes", "yes"), ("no", "yes"), ("no", "no")]
