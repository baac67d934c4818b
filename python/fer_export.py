"""Load a `fer export` folder into PyTorch and check it.

    python3 python/fer_export.py EXPORT_DIR      # checks SHA-256 sums and each member's logits on probe.json

As a module: `models, meta = load(EXPORT_DIR)`, then `probabilities(models, meta, x)` for x of shape
[N, 1, side, side] holding grayscale pixels / 255 (each model applies its own training mean/std).
The seed CNN and DNN and the VGG-style vgg-bn below mirror Fer.Core/Models/SeedCnn.cs, SeedDnn.cs and FerVgg.cs
layer by layer, with the same state_dict names, so `load_state_dict(..., strict=True)` checks every tensor's name and shape.
"""
import hashlib
import json
import pathlib
import sys

import torch
from torch import nn


class ConvRelu(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k)

    def forward(self, x):
        return torch.relu(self.conv(x))


class FlattenDense(nn.Module):
    def __init__(self, fin, fout):
        super().__init__()
        self.dense = nn.Linear(fin, fout)

    def forward(self, x):
        return self.dense(x.flatten(1))


class Normalised(nn.Module):
    """(x - input_mean) / input_std, then the layers in order (as FerModel.forward)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(1))
        self.register_buffer("input_std", torch.ones(1))

    def train(self, mode=True):
        # The layer list is plain (the named layers are registered once, under their Keras names), so modes are passed on.
        super().train(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def forward(self, x):
        x = (x - self.input_mean) / self.input_std
        for layer in self.layers:
            x = layer(x)
        return x


class SeedCnn(Normalised):
    def __init__(self, num_classes=7, side=48, conv_dropout=0.3, dense_dropout=0.5):
        super().__init__()
        self.conv2d_1 = ConvRelu(1, 64, 5)
        self.conv2d_2 = ConvRelu(64, 64, 3)
        self.conv2d_3 = ConvRelu(64, 64, 3)
        self.conv2d_4 = ConvRelu(64, 96, 3)
        self.conv2d_5 = ConvRelu(96, 128, 3)
        self.conv2d_6 = ConvRelu(128, 128, 3)
        s = side
        s = (s - 5) // 2 + 1
        s = (s - 3) // 2 + 1
        s = (s + 2 - 3) // 2 + 1
        self.dense_1 = nn.Linear(128 * s * s, 900)
        self.dense_2 = nn.Linear(900, 900)
        self.dense_3 = nn.Linear(900, num_classes)
        pad = nn.ZeroPad2d
        self.layers = [
            self.conv2d_1, pad(2), nn.MaxPool2d(5, 2), pad(1), self.conv2d_2, pad(1), self.conv2d_3, nn.AvgPool2d(3, 2),
            pad(1), nn.Dropout(conv_dropout), self.conv2d_4, pad(1), self.conv2d_5, pad(1), nn.Dropout(conv_dropout),
            self.conv2d_6, pad(1), nn.AvgPool2d(3, 2), nn.Dropout(conv_dropout), nn.Flatten(),
            self.dense_1, nn.ReLU(), nn.Dropout(dense_dropout), self.dense_2, nn.ReLU(), nn.Dropout(dense_dropout), self.dense_3,
        ]


class SeedDnn(Normalised):
    def __init__(self, num_classes=7, side=48, dropout=0.3):
        super().__init__()
        widths = [1024, 1024, 768, 768, 512, 512]
        self.dense_1 = FlattenDense(side * side, widths[0])
        for i in range(1, 6):
            setattr(self, f"dense_{i + 1}", nn.Linear(widths[i - 1], widths[i]))
        self.dense_7 = nn.Linear(widths[5], num_classes)
        self.layers = []
        for i in range(1, 7):
            self.layers += [getattr(self, f"dense_{i}"), nn.ReLU(), nn.Dropout(dropout)]
        self.layers.append(self.dense_7)


class VggBn(Normalised):
    """Fer.Core/Models/FerVgg.cs: four blocks of [conv-BN-ReLU x2, max-pool 2, dropout] with 64/128/256/512 channels
    (times width, at least 8), then dense-BN-ReLU-dropout and the classifier; layers named as Keras would (conv2d_1, ...)."""

    def __init__(self, num_classes=7, side=48, width=1.0, dropout=0.3):
        super().__init__()
        counts = {}
        self.layers = []

        def add(prefix, module):
            counts[prefix] = counts.get(prefix, 0) + 1
            setattr(self, f"{prefix}_{counts[prefix]}", module)
            self.layers.append(module)

        cin, s = 1, side
        for base in (64, 128, 256, 512):
            c = max(8, round(base * width))  # round half to even, as .NET's Math.Round
            for _ in range(2):
                add("conv2d", nn.Conv2d(cin, c, 3, padding=1))
                add("batch_normalization", nn.BatchNorm2d(c))
                add("activation", nn.ReLU())
                cin = c
            add("max_pooling2d", nn.MaxPool2d(2, 2))
            add("dropout", nn.Dropout(dropout))
            s //= 2
        hidden = max(16, round(256 * width))
        add("flatten", nn.Flatten())
        add("dense", nn.Linear(cin * s * s, hidden))
        add("batch_normalization", nn.BatchNorm1d(hidden))
        add("activation", nn.ReLU())
        add("dropout", nn.Dropout(max(dropout, 0.5)))
        add("dense", nn.Linear(hidden, num_classes))


ARCHITECTURES = {"seed-cnn": SeedCnn, "seed-dnn": SeedDnn, "vgg-bn": VggBn}


def load(export_dir):
    """Every member of the export as an eval-mode PyTorch model, by name, and model.json."""
    root = pathlib.Path(export_dir)
    meta = json.loads((root / "model.json").read_text())
    side, classes = meta["input"]["side"], len(meta["classes"])
    models = {}
    for m in meta["members"]:
        if m["architecture"] not in ARCHITECTURES:
            raise SystemExit(f"{m['name']}: architecture {m['architecture']} has no PyTorch definition here (a model its flow "
                             "script registers: add an nn.Module to ARCHITECTURES; model.json lists its layers and state_dict shapes)")
        model = ARCHITECTURES[m["architecture"]](classes, side, **m["hyperparameters"])
        model.load_state_dict(torch.load(root / m["file"], map_location="cpu"), strict=True)
        models[m["name"]] = model.eval()
    return models, meta


@torch.no_grad()
def probabilities(models, meta, x):
    """The ensemble's class probabilities for x [N, 1, side, side] on 0..1, with the run's weights and flip TTA."""
    total = 0
    for name, model in models.items():
        p = torch.softmax(model(x), 1)
        if meta["ensemble"]["flip_tta"]:
            p = (p + torch.softmax(model(x.flip(3)), 1)) / 2
        total = total + meta["ensemble"]["weights"][name] * p
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


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
