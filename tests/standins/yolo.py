"""YOLO11n stand-in: the real architecture (yolo11n.yaml) with random weights, saved as `yolo11n.pt` where
ultralytics looks for weights, so that `YOLO("yolo11n.pt")` in Lab 2 loads it without any download.

A freshly initialised YOLO11n detects nothing: its activations shrink layer after layer until the head's output is
just its biases, the same for every image and far below any confidence threshold. A stand-in that detects nothing
would leave the lab's tables, plots and scorecard running on empty results, so this one is adjusted:

1. the BatchNorm statistics are re-estimated on the two photographs shipped inside ultralytics, so features keep
   unit scale to the end of the network and the head's output depends on the image;
2. the classification head is switched off for every class but person, car, bus, horse and cow, and on every
   level but the coarsest (stride 32, 20x20 cells at 640 px: few, large boxes instead of thousands);
3. the remaining class scores are scaled to unit spread with biases around the 0.25 threshold, so which class
   wins where, and how confident it is, depends on the image;
4. the box regression ignores the image and gives every cell the largest box it can (15 cells each side):
   clipped to the picture, these boxes overlap so much that non-maximum suppression keeps only a few per class.
   (Any image-dependent box or threshold gets out of hand: the spread of a random network's outputs varies
   forty-fold between photographs.)

The result returns some tens of large boxes per photograph, of up to five classes, with confidences spread over
(0.25, 1): meaningless predictions, but enough to exercise every code path. A file named STANDIN lies next to the
weights.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

from . import MARKER

WEIGHTS_NAME = "yolo11n.pt"
ACTIVE_CLASSES = {"person": 0.8, "car": 0.4, "bus": -0.2, "horse": -0.4, "cow": 0.0}  # logit offsets
CLASS_SPREAD = 1.0  # standard deviation of the active class logits on the calibration photos
BOX_BIN, BOX_PEAK = 15, 8.0  # every box side 15 x 32 px from its cell centre
SEED = 0


@contextlib.contextmanager
def _environ(**values: str):
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _write_settings(root: Path) -> Path:
    """Write <root>/Ultralytics/settings.json (full current schema; root is YOLO_CONFIG_DIR) and the fonts beside it;
    return the weights folder."""
    from ultralytics.utils import SETTINGS, SettingsManager

    user_dir = root / "Ultralytics"
    user_dir.mkdir(parents=True, exist_ok=True)
    weights_dir = root / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    file = user_dir / "settings.json"
    # The process's own settings object when ultralytics was imported pointing here, so that it sees the update;
    # otherwise a new one for that file (it fills in every key of the installed version's schema).
    settings = SETTINGS if Path(SETTINGS.file).resolve() == file.resolve() else SettingsManager(file)
    settings.update(
        datasets_dir=str(root / "datasets"),
        weights_dir=str(weights_dir),
        runs_dir=str(root / "runs"),
        sync=False,
        clearml=False,
        comet=False,
        dvc=False,
        mlflow=False,
        raytune=False,
        tensorboard=False,
        wandb=False,
        vscode_msg=False,
        openvino_msg=False,
    )
    # ultralytics downloads Arial fonts on first PIL drawing unless a file of that name is in its config folder.
    import matplotlib

    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        shutil.copyfile(dejavu, user_dir / name)
    return weights_dir


def _calibration_batch():
    import numpy as np
    import torch
    from PIL import Image
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils import ASSETS

    batch = []
    for name in ("bus.jpg", "zidane.jpg"):
        rgb = np.asarray(Image.open(ASSETS / name).convert("RGB"))
        boxed = LetterBox((640, 640), auto=False)(image=np.ascontiguousarray(rgb))
        batch.append(torch.from_numpy(np.ascontiguousarray(boxed)).permute(2, 0, 1).float() / 255)
    return torch.stack(batch)


def build_model():
    """The stand-in as an ultralytics YOLO object (real yolo11n architecture, adjusted random weights)."""
    import torch
    from torch import nn
    from ultralytics import YOLO
    from ultralytics.utils import ROOT, YAML

    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        yolo = YOLO("yolo11n.yaml", verbose=False)
    net = yolo.model
    names = YAML.load(ROOT / "cfg" / "datasets" / "coco.yaml")["names"]
    net.names = {int(k): v for k, v in names.items()}
    head = net.model[-1]
    batch = _calibration_batch()

    with torch.no_grad():
        # 1. BatchNorm statistics from real photographs (cumulative average over the batch).
        norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        net.eval()
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        net(batch)
        for bn in norms:
            bn.eval()

        # 2.-4. The head: the coarsest level only, a few classes scaled around the threshold, fixed large boxes.
        _, raw = net(batch)
        h, w = raw["feats"][-1].shape[2:]
        coarse = slice(-h * w, None)  # the anchors of the last level (stride 32) come last
        active = [i for i, n in net.names.items() if n in ACTIVE_CLASSES]
        cls_conv, box_conv = head.cv3[-1][-1], head.cv2[-1][-1]
        cls_raw = raw["scores"][:, active, coarse] - cls_conv.bias[active, None]
        for level in range(head.nl):
            head.cv3[level][-1].bias.fill_(-30.0)
            if level != head.nl - 1:
                head.cv3[level][-1].weight.zero_()
                head.cv2[level][-1].weight.zero_()
        off = torch.ones(head.nc, dtype=torch.bool)
        off[active] = False
        cls_conv.weight[off] = 0
        scale = CLASS_SPREAD / cls_raw.std()
        cls_conv.weight[active] *= scale
        for i in active:
            cls_conv.bias[i] = ACTIVE_CLASSES[net.names[i]] - 1.1 - cls_raw.mean() * scale  # logit(0.25) = -1.1
        box_conv.weight.zero_()
        box_conv.bias.fill_(0.0)
        box_conv.bias.view(4, head.reg_max)[:, BOX_BIN] = BOX_PEAK
    return yolo


def install(root: Path) -> dict[str, str]:
    """Write the stand-in under <root>/ultralytics; return {"YOLO_CONFIG_DIR": ..., "YOLO_OFFLINE": "1"}.

    The layout is the kit cache's (cvkit.kit_cache_env): Ultralytics/settings.json with the fonts, and weights/.
    """
    root = Path(root).resolve() / "ultralytics"
    env = {"YOLO_CONFIG_DIR": str(root), "YOLO_OFFLINE": "1"}
    # ultralytics reads its config folder once, at import: if it is not imported yet, import it pointing here
    # (and offline) rather than at the user's own settings.
    with _environ(**env) if "ultralytics" not in sys.modules else contextlib.nullcontext():
        import ultralytics  # noqa: F401

        weights_dir = _write_settings(root)
        model = build_model()
    weights = weights_dir / WEIGHTS_NAME
    model.save(weights)
    (weights_dir / MARKER).write_text(
        f"{WEIGHTS_NAME} is a stand-in written by the tests: the yolo11n architecture with random weights "
        "(see tests/standins/yolo.py). Its detections are meaningless.\n"
    )
    settings = json.loads((root / "Ultralytics" / "settings.json").read_text())
    assert Path(settings["weights_dir"]) == weights_dir
    return env
