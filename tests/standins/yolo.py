"""YOLO11 stand-ins: the real architectures (yolo11n.yaml, yolo11s.yaml) with random weights, saved as `yolo11n.pt`
and `yolo11s.pt` where ultralytics looks for weights, so that `YOLO("yolo11n.pt")` in Lab 2, or `YOLO("yolo11s.pt")`
in its exercise, loads without any download.

A freshly initialised YOLO11 detects nothing: its activations shrink layer after layer until the head's output is
just its biases, the same for every image and far below any confidence threshold. Only the last layers of the
detection head are set by hand, so that each image gives boxes the way a trained model's would reach the kit's code:

1. every BatchNorm's statistics are re-estimated on the two photographs shipped inside ultralytics, so features keep
   unit scale to the end of the network and the head's input depends on the image;
2. classes: on each of the three levels (strides 8, 16, 32) the class branch takes a local contrast of its input
   (3x3, per channel), projects it on random directions, turns each projection into a soft step (its sign), and
   gives a class a high score only where all of its own few projections are positive (a soft AND, clamped). A
   sign does not depend on how strong an image's features are, so every photograph gets a similar, small share of
   positions above the threshold: a few tens of boxes, of the classes in ACTIVE_CLASSES, with confidences spread
   over (0.25, 0.95); a flat grey frame gets none. Every other class scores about 0;
3. boxes: each side's distance is a soft step of another projection, placed on the DFL bins (so a box is 2 to 5
   grid cells from its position on each side: about 30-80 px wide on stride 8, 60-160 on 16 and 130-320 on 32).

The predictions are meaningless, but they reach every path the lab takes (tables, NMS, the threshold curve, the
scorecard, all three grids). A file named STANDIN lies next to the weights.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

from . import MARKER

ARCHITECTURES = {"yolo11n.pt": "yolo11n.yaml", "yolo11s.pt": "yolo11s.yaml"}
WEIGHTS_NAME = "yolo11n.pt"  # the lab's model; yolo11s.pt is its exercise's
ACTIVE_CLASSES = {"person": 0.0, "car": -0.3, "bus": -0.6, "horse": -0.3, "cow": -0.6, "dog": -0.3}  # logit offsets
SIGNS_PER_LEVEL = (14, 11, 8)  # projections a class needs positive, on strides 8, 16 and 32 (more cells, more signs)
SIGN_GAIN = 3.0  # sharpness of each soft step, in standard deviations of its projection
BOX_NEAR, BOX_RANGE = 2.0, 3.0  # each side of a box lies BOX_NEAR to BOX_NEAR + BOX_RANGE grid cells away
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
    # Written beside it, then moved over it in one step: another process of the test run may be importing
    # ultralytics meanwhile, and would reset a file it finds empty. A new manager fills in every key of the
    # installed version's schema; this process's own settings, if they come from that file, re-read it.
    partial = user_dir / f"settings.json.{os.getpid()}"
    SettingsManager(partial).update(
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
    partial.replace(file)
    if Path(SETTINGS.file).resolve() == file.resolve():
        SETTINGS._load()
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


def _calibrate(norms, run) -> None:
    """Set the BatchNorms' statistics to those of one call of `run` (cumulative average over its batch)."""
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    run()
    for bn in norms:
        bn.eval()


def _soft_steps(conv, n_pairs: int, weights, features, bias_on: float = 1.0) -> None:
    """Make output channels 2i and 2i+1 of an ultralytics Conv (conv, BN, SiLU) SiLU(g z_i + bias_on) and SiLU(g z_i),
    where z_i is projection `weights[i]` of its input standardised on `features`: their difference is a soft step
    from 0 to 1 at z_i = 0, whatever the scale of the input. Other channels are switched off (about 0)."""
    conv.conv.weight.zero_()
    conv.conv.weight[0 : 2 * n_pairs : 2] = weights
    conv.conv.weight[1 : 2 * n_pairs : 2] = weights
    _calibrate([conv.bn], lambda: conv(features))
    conv.bn.weight.fill_(0.0)
    conv.bn.bias.fill_(-20.0)
    conv.bn.weight[: 2 * n_pairs] = SIGN_GAIN
    conv.bn.bias[0 : 2 * n_pairs : 2] = bias_on
    conv.bn.bias[1 : 2 * n_pairs : 2] = 0.0


def _set_identity_norm(bn, weight: float = 1.0, bias: float = 0.0) -> None:
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)
    bn.weight.fill_(weight)
    bn.bias.fill_(bias)


def _set_class_branch(branch, x, classes: dict[int, float], signs: int, generator) -> None:
    """One level's class branch (DWConv, Conv, DWConv, Conv, Conv2d): local contrast, soft signs, a soft AND per class."""
    import torch

    (dw1, pw1), (dw2, pw2), last = branch
    c_in, width = dw1.conv.in_channels, pw1.conv.out_channels
    # Local contrast of each input channel (centre minus the 3x3 mean), standardised, then shifted into SiLU's
    # nearly linear range (+4): the projections below sum to zero over channels, so the shift cancels.
    kernel = torch.full((3, 3), -1 / 9)
    kernel[1, 1] += 1
    dw1.conv.weight.copy_(kernel.expand(c_in, 1, 3, 3))
    _calibrate([dw1.bn], lambda: dw1(x))
    dw1.bn.running_mean.zero_()
    dw1.bn.weight.fill_(1.0)
    dw1.bn.bias.fill_(4.0)
    pairs = width // 2
    directions = torch.randn(pairs, c_in, generator=generator)
    directions -= directions.mean(1, keepdim=True)
    _soft_steps(pw1, pairs, directions[:, :, None, None], dw1(x))
    # Pass the steps on unchanged (+4 keeps SiLU nearly linear; the differences below cancel it).
    dw2.conv.weight.zero_()
    dw2.conv.weight[:, 0, 1, 1] = 1.0
    _set_identity_norm(dw2.bn, bias=4.0)
    # Per class, two channels from the sum of its `signs` steps s: SiLU(4 (s - signs + 0.5)) and the same minus 2;
    # their difference rises from 0 (fewer than all positive) to 2 (all positive), and the last layer scales it.
    pw2.conv.weight.zero_()
    _set_identity_norm(pw2.bn, bias=-20.0)
    last.weight.zero_()
    last.bias.fill_(-30.0)
    for n, (cls, offset) in enumerate(classes.items()):
        chosen = torch.randperm(pairs, generator=generator)[:signs]
        for channel, lower in ((2 * n, 0.0), (2 * n + 1, 2.0)):
            pw2.conv.weight[channel, 2 * chosen, 0, 0] = 1.0
            pw2.conv.weight[channel, 2 * chosen + 1, 0, 0] = -1.0
            pw2.bn.weight[channel] = 4.0
            pw2.bn.bias[channel] = -4.0 * (signs - 0.5) - lower
        last.weight[cls, 2 * n, 0, 0] = 3.0
        last.weight[cls, 2 * n + 1, 0, 0] = -3.0
        last.bias[cls] = -3.5 + offset  # logit -3.5 (conf 0.03) to +2.5 (0.92), plus the class's offset


def _set_box_branch(branch, x, reg_max: int, generator) -> None:
    """One level's box branch (Conv, Conv, Conv2d): each side's DFL distribution peaks BOX_NEAR to BOX_NEAR + BOX_RANGE
    bins away, moved by a soft step of its own projection."""
    import torch

    first, second, last = branch
    hidden = first(x)
    directions = torch.randn(4, second.conv.in_channels, 3, 3, generator=generator)
    _soft_steps(second, 4, directions, hidden)
    bins = torch.arange(reg_max, dtype=torch.float)
    spread = 1.5  # width of each side's distribution, in bins
    slope = (bins - BOX_NEAR) / spread**2  # log-density of a normal distribution, moved by BOX_RANGE * step
    last.weight.zero_()
    for side in range(4):
        rows = slice(side * reg_max, (side + 1) * reg_max)
        last.weight[rows, 2 * side, 0, 0] = slope * BOX_RANGE
        last.weight[rows, 2 * side + 1, 0, 0] = -slope * BOX_RANGE
        last.bias[rows] = -((bins - BOX_NEAR) ** 2) / (2 * spread**2)


def build_model(architecture: str = "yolo11n.yaml"):
    """A stand-in as an ultralytics YOLO object (the real architecture, random weights, its head set by hand)."""
    import torch
    from torch import nn
    from ultralytics import YOLO
    from ultralytics.utils import ROOT, YAML

    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        yolo = YOLO(architecture, verbose=False)
    net = yolo.model
    names = YAML.load(ROOT / "cfg" / "datasets" / "coco.yaml")["names"]
    net.names = {int(k): v for k, v in names.items()}
    head = net.model[-1]
    batch = _calibration_batch()
    generator = torch.Generator().manual_seed(SEED)
    classes = {i: ACTIVE_CLASSES[name] for i, name in net.names.items() if name in ACTIVE_CLASSES}

    with torch.no_grad():
        net.eval()
        inputs = []  # the head's input on each level, kept from the same pass (batch statistics = the new running ones)
        hook = head.register_forward_pre_hook(lambda module, args: inputs.extend(args[0]))
        _calibrate([m for m in net.modules() if isinstance(m, nn.BatchNorm2d)], lambda: net(batch))
        hook.remove()
        for level, x in enumerate(inputs):
            _set_class_branch(head.cv3[level], x, classes, SIGNS_PER_LEVEL[level], generator)
            _set_box_branch(head.cv2[level], x, head.reg_max, generator)
    return yolo


def install(root: Path) -> dict[str, str]:
    """Write the stand-ins under <root>/ultralytics; return {"YOLO_CONFIG_DIR": ..., "YOLO_OFFLINE": "1"}.

    The layout is the kit cache's (cvkit.weights.kit_cache_env): Ultralytics/settings.json with the fonts, and weights/.
    """
    root = Path(root).resolve() / "ultralytics"
    env = {"YOLO_CONFIG_DIR": str(root), "YOLO_OFFLINE": "1"}
    # ultralytics reads its config folder once, at import: if it is not imported yet, import it pointing here
    # (and offline) rather than at the user's own settings.
    with _environ(**env) if "ultralytics" not in sys.modules else contextlib.nullcontext():
        import ultralytics  # noqa: F401

        weights_dir = _write_settings(root)
        for weights, architecture in ARCHITECTURES.items():
            build_model(architecture).save(weights_dir / weights)
    (weights_dir / MARKER).write_text(
        f"{', '.join(ARCHITECTURES)} are stand-ins written by the tests: the real architectures with random weights "
        "(see tests/standins/yolo.py). Their detections are meaningless.\n"
    )
    settings = json.loads((root / "Ultralytics" / "settings.json").read_text())
    assert Path(settings["weights_dir"]) == weights_dir
    return env
