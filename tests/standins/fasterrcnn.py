"""Faster R-CNN stand-in: torchvision's `fasterrcnn_mobilenet_v3_large_fpn` with random weights, saved under the file
name torchvision downloads `FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1` to, so that
`fasterrcnn_mobilenet_v3_large_fpn(weights=FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1)` in Lab 2 loads without
any download. With `weights=` given, torchvision sets `weights_backbone` to None and loads everything (backbone
included) from this one file, so no MobileNetV3 backbone file is needed.

A Faster R-CNN with random weights gives every proposal about the same score for each of its 91 slots (softmax,
about 0.011 each), below any useful threshold: no boxes, and the tables and drawings would run on nothing. So, as for
the YOLO stand-ins (tests/standins/yolo.py), a few layers are set by hand:

1. every BatchNorm's statistics are re-estimated on the two photographs shipped inside ultralytics, at the size the
   model's own transform gives them, so that features keep unit scale to the end of the backbone;
2. the box head (fc6, fc7) and the class scores: fc6 projects each proposal's pooled 7x7 features on random
   directions that sum to zero over the 7x7 cells (a contrast inside the proposal, blind to how bright or strong the
   image's features are), and turns each projection into a soft step from 0 to 1 (its sign); fc7 gives each class of
   ACTIVE_CLASSES a soft AND of a few of those steps; the class's logit rises from its offset by up to LOGIT_RANGE
   with it (the background logit stays 0, every other slot, the 'N/A' ones included, gets -30). A sign does not depend
   on an image's contrast, so every photograph gets a similar small share of high-scoring proposals; they come in
   clusters (overlapping proposals see similar features) that the per-class NMS thins out to some tens of boxes,
   with scores spread over (0.25, 0.95); a flat grey frame gets none;
3. the box deltas: a small random projection of the steps, so boxes move a little off their proposals.

The RPN keeps its random initialisation (objectness about 0.5 everywhere; the proposals are its anchors nearly
unchanged). Every path the real model takes runs (transform, backbone, RPN and its NMS, RoIAlign, box head, per-class
NMS); the predictions are meaningless. A line in the STANDIN file next to the weights says so.
"""

from __future__ import annotations

from pathlib import Path

from . import MARKER

ACTIVE_CLASSES = {"person": 0.0, "car": -0.3, "bus": -0.6, "horse": -0.3, "dog": -0.3, "cow": -0.6}  # logit offsets
RPN_SIGNS, RPN_GAIN = 6, 4.0  # steps an anchor needs positive to become a proposal; logits per step
SIGNS = 8  # steps a class needs positive
STEP_GAIN = 3.0  # sharpness of each soft step, per standard deviation of its projection
LOGIT_LOW, LOGIT_RANGE = -3.5, 6.0  # a class's logit goes from LOGIT_LOW (score 0.03) to LOGIT_LOW + LOGIT_RANGE (0.92)
DELTA_SD = 0.5  # spread of the box deltas (torchvision divides them by 10, 10, 5, 5 before applying them)
FROZEN_EPS = 1e-5  # torchvision's FrozenBatchNorm2d, which the model loaded with weights= uses
SEED = 0


def weights():
    """The weights enum member the stand-in poses as."""
    from torchvision.models.detection import FasterRCNN_MobileNet_V3_Large_FPN_Weights

    return FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1


def file_name() -> str:
    """The file name torchvision stores these weights under in $TORCH_HOME/hub/checkpoints."""
    return weights().url.rsplit("/", 1)[-1]


def _calibration_images():
    """bus.jpg and zidane.jpg from the installed ultralytics package, found without importing it (an import would read
    its settings before tests/standins/yolo.py points them at the stand-ins)."""
    import importlib.util

    import torch
    from PIL import Image
    from torchvision.transforms.functional import pil_to_tensor

    assets = Path(importlib.util.find_spec("ultralytics").submodule_search_locations[0]) / "assets"
    return [pil_to_tensor(Image.open(assets / name).convert("RGB")).to(torch.float) / 255
            for name in ("bus.jpg", "zidane.jpg")]


def build_model():
    """The stand-in as a torchvision FasterRCNN in eval mode (real architecture, random weights, a few layers set)."""
    import torch
    from torch import nn
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_fpn

    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        model = fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None, num_classes=len(weights().meta["categories"]))
    generator = torch.Generator().manual_seed(SEED)
    images = _calibration_images()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    rpn, head, predictor = model.rpn, model.roi_heads.box_head, model.roi_heads.box_predictor
    with torch.no_grad():
        model.eval()
        batch, _ = model.transform(images)
        for bn in norms:  # statistics of one pass over both photographs (cumulative average)
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        features = list(model.backbone(batch.tensors).values())
        for bn in norms:
            bn.eval()
            bn.running_var += bn.eps - FROZEN_EPS  # the same normalisation once loaded into FrozenBatchNorm2d
            bn.eps = FROZEN_EPS

        # RPN: the conv gives soft steps (signs) of local contrasts of the features, projected on random directions;
        # anchor a's objectness logit is RPN_GAIN (sum of its RPN_SIGNS steps - RPN_SIGNS + 1) - 3.04, above
        # rpn_score_thresh (0.05, logit -2.94) only where all of its steps are (nearly) 1
        conv, logits = rpn.head.conv[0][0], rpn.head.cls_logits
        anchors, channels, pairs = logits.out_channels, conv.in_channels, conv.out_channels // 2
        contrast = torch.full((3, 3), -1 / 9)
        contrast[1, 1] += 1
        directions = torch.randn(pairs, channels, generator=generator)
        conv.weight.copy_((directions[:, :, None, None] * contrast).repeat_interleave(2, dim=0))
        conv.bias.zero_()
        spread = torch.cat([conv(f)[:, ::2].transpose(0, 1).flatten(1) for f in features], dim=1).std(1)
        conv.weight *= STEP_GAIN / spread.repeat_interleave(2)[:, None, None, None]
        conv.bias.copy_(torch.tensor([0.5, -0.5]).repeat(pairs))
        logits.weight.zero_()
        for a in range(anchors):
            chosen = torch.randperm(pairs, generator=generator)[:RPN_SIGNS]
            logits.weight[a, 2 * chosen, 0, 0] = RPN_GAIN
            logits.weight[a, 2 * chosen + 1, 0, 0] = -RPN_GAIN
        logits.bias.fill_(-RPN_GAIN * (RPN_SIGNS - 1) - 3.04)
        rpn.head.bbox_pred.weight.zero_()  # the proposals are the anchors
        rpn.head.bbox_pred.bias.zero_()

        pooled = []  # the box head's input (RoIAlign's 256 x 7 x 7 per proposal) for both photographs
        hook = head.register_forward_hook(lambda module, args, out: pooled.append(args[0].flatten(1)))
        model(images)
        hook.remove()
        pooled = torch.cat(pooled)

        # fc6: pairs of rows relu(g z + 1/2) and relu(g z - 1/2), whose difference is a soft step clamp(g z + 1/2, 0, 1)
        pairs = head.fc6.out_features // 2
        channels = pooled.shape[1] // 49
        directions = torch.randn(pairs, channels, 49, generator=generator)
        directions = (directions - directions.mean(2, keepdim=True)).flatten(1)  # zero sum over the 7x7 cells
        directions *= STEP_GAIN / (pooled @ directions.T).std(0)[:, None]
        head.fc6.weight.copy_(directions.repeat_interleave(2, dim=0))
        head.fc6.bias.copy_(torch.tensor([0.5, -0.5]).repeat(pairs))
        steps = torch.zeros(pairs, head.fc6.out_features)  # step i = output 2i minus output 2i + 1
        steps[torch.arange(pairs), 2 * torch.arange(pairs)] = 1.0
        steps[torch.arange(pairs), 2 * torch.arange(pairs) + 1] = -1.0

        # fc7: per class, relu(sum of its SIGNS steps - (SIGNS - 1)), in [0, 1]: 1 where all its steps are 1;
        # then the first 64 steps themselves, for the box deltas
        head.fc7.weight.zero_()
        head.fc7.bias.zero_()
        categories = weights().meta["categories"]
        predictor.cls_score.weight.zero_()
        predictor.cls_score.bias.fill_(-30.0)
        predictor.cls_score.bias[0] = 0.0  # background
        for n, (name, offset) in enumerate(ACTIVE_CLASSES.items()):
            chosen = torch.randperm(pairs, generator=generator)[:SIGNS]
            head.fc7.weight[n] = steps[chosen].sum(0)
            head.fc7.bias[n] = -(SIGNS - 1.0)
            predictor.cls_score.weight[categories.index(name), n] = LOGIT_RANGE
            predictor.cls_score.bias[categories.index(name)] = LOGIT_LOW + offset
        first = len(ACTIVE_CLASSES)
        passed = 64
        head.fc7.weight[first : first + passed] = steps[:passed]

        predictor.bbox_pred.weight.zero_()
        predictor.bbox_pred.bias.zero_()
        predictor.bbox_pred.weight[:, first : first + passed] = (
            torch.randn(predictor.bbox_pred.out_features, passed, generator=generator) * DELTA_SD / passed**0.5
        )
    return model


def install(root: Path) -> dict[str, str]:
    """Write the stand-in's state dict into <root>/torch/hub/checkpoints; return {"TORCH_HOME": ...}."""
    import torch

    torch_home = Path(root) / "torch"
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    state = {key: value for key, value in build_model().state_dict().items() if not key.endswith("num_batches_tracked")}
    partial = checkpoints / (file_name() + ".partial")
    torch.save(state, partial)
    partial.replace(checkpoints / file_name())
    with (checkpoints / MARKER).open("a", encoding="utf-8") as marker:  # the ResNet stand-ins write there too
        marker.write(f"{file_name()} holds random weights written by the tests (see tests/standins/fasterrcnn.py)\n")
    return {"TORCH_HOME": str(torch_home)}
