"""Load a `fer export` folder into PyTorch and check it.

    python3 python/fer_export.py EXPORT_DIR      # checks SHA-256 sums and each member's logits on probe.json

As a module: `models, meta = load(EXPORT_DIR)`, then `probabilities(models, meta, x)` for x of shape
[N, 1, side, side] holding grayscale pixels / 255 (each model applies its own training mean/std).
Each member is rebuilt from model.json's description of its layers (each layer's PyTorch operations, written by
Fer.Core/Models/LayerSpec.cs), under the same state_dict names, so `load_state_dict(..., strict=True)` checks every
tensor's name and shape. Any model Fer can train, a flow script's included, loads without code written for it here.
"""
import hashlib
import json
import pathlib
import sys

import torch
from torch import nn


def _none(value):
    return None if value == "none" else value


def build(op, layer):
    """The PyTorch module of one operation of a layer (see LayerOp in Fer.Core/Models/LayerSpec.cs)."""
    kind, a = op["op"], op.get("args", {})
    if kind == "conv2d":
        return nn.Conv2d(a["in_channels"], a["out_channels"], tuple(a["kernel_size"]), stride=tuple(a["stride"]),
                         padding=a["padding"] if isinstance(a["padding"], str) else tuple(a["padding"]),
                         dilation=tuple(a["dilation"]), groups=a["groups"], bias=a["bias"])
    if kind == "linear":
        return nn.Linear(a["in_features"], a["out_features"], bias=a["bias"])
    if kind == "batch_norm":
        norm = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[a["dims"]]
        return norm(a["num_features"], eps=a["eps"], momentum=_none(a["momentum"]), affine=a["affine"],
                    track_running_stats=a["track_running_stats"])
    if kind == "max_pool2d":
        return nn.MaxPool2d(tuple(a["kernel_size"]), tuple(a["stride"]), tuple(a["padding"]), tuple(a["dilation"]), ceil_mode=a["ceil_mode"])
    if kind == "avg_pool2d":
        return nn.AvgPool2d(tuple(a["kernel_size"]), tuple(a["stride"]), tuple(a["padding"]), ceil_mode=a["ceil_mode"],
                            count_include_pad=a["count_include_pad"], divisor_override=_none(a["divisor_override"]))
    if kind == "zero_pad2d":
        return nn.ZeroPad2d(tuple(a["padding"]))  # (left, right, top, bottom), as TorchSharp keeps it
    if kind == "relu":
        return nn.ReLU()
    if kind == "identity":
        return nn.Identity()
    if kind == "flatten":
        return nn.Flatten(a["start_dim"], a["end_dim"])
    if kind == "dropout":
        return nn.Dropout(a["p"])
    if kind == "center_crop":
        return CenterCrop(a["margin"])
    raise SystemExit(f"layer {layer}: {kind} {a.get('type', '')} has no PyTorch equivalent in fer_export.py")


class CenterCrop(nn.Module):
    """Keras' Cropping2D with one margin on every side (Fer's CenterCrop2d): the centre of the input."""

    def __init__(self, margin):
        super().__init__()
        self.margin = margin

    def forward(self, x):
        m = self.margin
        return x[:, :, m:x.shape[2] - m, m:x.shape[3] - m]


def crop_margin(model):
    """Pixels the model cuts from each side first (its first layer a centre crop), else 0."""
    first = model.layers[0] if model.layers else None
    if isinstance(first, Layer) and first.steps and isinstance(first.steps[0], CenterCrop):
        return first.steps[0].margin
    return first.margin if isinstance(first, CenterCrop) else 0


class Layer(nn.Module):
    """A layer of several operations; those with parameters are children under their own names (conv2d_1.conv)."""

    def __init__(self, name, ops):
        super().__init__()
        self.steps = []
        for op in ops:
            module = build(op, name)
            if op.get("module"):
                setattr(self, op["module"], module)
            self.steps.append(module)

    def train(self, mode=True):
        super().train(mode)
        for step in self.steps:  # a plain list: the steps without parameters are not children
            step.train(mode)
        return self

    def forward(self, x):
        for step in self.steps:
            x = step(x)
        return x


class FerNet(nn.Module):
    """(x - input_mean) / input_std, then the layers in order (as FerModel.forward); each layer registered under its name."""

    def __init__(self, layers):
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(1))
        self.register_buffer("input_std", torch.ones(1))
        self.layers = []
        for layer in layers:
            ops = layer["ops"]
            module = build(ops[0], layer["name"]) if len(ops) == 1 and ops[0].get("module") == "" else Layer(layer["name"], ops)
            setattr(self, layer["name"], module)
            self.layers.append(module)

    def forward(self, x):
        x = (x - self.input_mean) / self.input_std
        for layer in self.layers:
            x = layer(x)
        return x


def load(export_dir):
    """Every member of the export as an eval-mode PyTorch model, by name, and model.json."""
    root = pathlib.Path(export_dir)
    meta = json.loads((root / "model.json").read_text())
    models = {}
    for m in meta["members"]:
        model = FerNet(m["layers"])
        model.load_state_dict(torch.load(root / m["file"], map_location="cpu"), strict=True)
        models[m["name"]] = model.eval()
    return models, meta


@torch.no_grad()
def probabilities(models, meta, x):
    """The ensemble's class probabilities for x [N, 1, side, side] on 0..1, with the run's weights and test-time
    augmentation (model.json's ensemble.combine says the same in words)."""
    ensemble = meta["ensemble"]
    tta = ensemble.get("tta", "flip" if ensemble["flip_tta"] else "none")
    total = 0
    for name, model in models.items():
        margin = crop_margin(model)
        if tta == "none":
            views = [x]
        elif tta == "ten_crop" and margin > 0:
            # Rolling by the margin brings each corner crop into the centre the model sees (as Fer's Predictor does).
            shifts = [(0, 0), (margin, margin), (margin, -margin), (-margin, margin), (-margin, -margin)]
            rolled = [x if s == (0, 0) else torch.roll(x, s, (2, 3)) for s in shifts]
            views = [v for r in rolled for v in (r, r.flip(3))]
        else:
            views = [x, x.flip(3)]
        p = sum(torch.softmax(model(v), 1) for v in views) / len(views)
        total = total + ensemble["weights"][name] * p
    return total


def main(export_dir):
    root = pathlib.Path(export_dir)
    for line in (root / "SHA256SUMS").read_text().splitlines():
        sha, name = line.split("  ", 1)
        actual = hashlib.sha256((root / name).read_bytes()).hexdigest()
        if actual != sha:
            raise SystemExit(f"{name}: SHA-256 {actual} does not match SHA256SUMS ({sha})")
    models, meta = load(root)
    probe = json.loads((root / "probe.json").read_text())
    side = probe["side"]
    x = torch.tensor(probe["images"], dtype=torch.float32).reshape(-1, 1, side, side) / 255
    worst = 0.0
    with torch.no_grad():
        for name, model in models.items():
            expected = torch.tensor(probe["logits"][name])
            diff = (model(x) - expected).abs().max().item()
            worst = max(worst, diff)
            print(f"{name}: max abs logit difference {diff:.3g} on {x.shape[0]} probe faces (torch {torch.__version__})")
        p = probabilities(models, meta, x)
    print("ensemble labels:", [meta["classes"][i] for i in p.argmax(1).tolist()])
    if worst > 1e-4:
        raise SystemExit(f"logits differ by {worst:.3g} (more than 1e-4)")
    if "probabilities" in probe:  # exports before Fer wrote them lack them
        tta = meta["ensemble"].get("tta", "flip" if meta["ensemble"]["flip_tta"] else "none")
        diff = (p - torch.tensor(probe["probabilities"])).abs().max().item()
        print(f"ensemble: max abs probability difference {diff:.3g} ({tta} test-time augmentation)")
        if diff > 1e-5:
            raise SystemExit(f"ensemble probabilities differ by {diff:.3g} (more than 1e-5)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
