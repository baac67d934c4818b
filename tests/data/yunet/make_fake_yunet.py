"""Writes fake-yunet.onnx: a stand-in with YuNet's interface for Fer's tests (the real model is not in this repository).

    /usr/bin/python3 tests/data/yunet/make_fake_yunet.py tests/data/yunet/fake-yunet.onnx   # Debian's python3-torch

Input "input" [1, 3, H, W], BGR 0..255; outputs cls/obj/bbox/kps for strides 8, 16 and 32, one row per cell in
row-major order, as OpenCV's FaceDetectorYN reads them. Its rule: at stride 32 a cell scores its mean brightness, its
box is the cell, its landmarks are fixed points in the cell (the eyes tilted by atan(0.15 / 0.4) = 20.6 degrees);
strides 8 and 16 score 0. A white 32x32 square on the 32-pixel grid is therefore one face with known landmarks.
"""
import sys

import torch
from torch import nn

class FakeYuNet(nn.Module):
    """YuNet's interface (input BGR [1,3,H,W] 0..255; cls/obj/bbox/kps per stride 8/16/32, rows in row-major cell
    order) with a trivial rule: at stride 32 a cell's score is its mean brightness, its box the cell, its landmarks
    fixed points in the cell with the eyes tilted; strides 8 and 16 score 0."""
    def forward(self, x):
        gray = x.mean(1, keepdim=True) / 255.0
        outs = {}
        for s in (8, 16, 32):
            pooled = nn.functional.avg_pool2d(gray, s, s)          # [1,1,h,w]
            rows = pooled.permute(0, 2, 3, 1).reshape(1, -1, 1)   # [1,N,1]
            score = rows if s == 32 else rows * 0
            n1 = rows * 0
            box = torch.cat([n1 + 0.5, n1 + 0.5, n1, n1], 2)       # centre of the cell, side = stride
            kps = torch.cat([n1 + 0.3, n1 + 0.3, n1 + 0.7, n1 + 0.45, n1 + 0.5, n1 + 0.55,
                             n1 + 0.35, n1 + 0.75, n1 + 0.65, n1 + 0.8], 2)
            outs[s] = (score, score, box, kps)
        return tuple(outs[s][0] for s in (8,16,32)) + tuple(outs[s][1] for s in (8,16,32)) + \
               tuple(outs[s][2] for s in (8,16,32)) + tuple(outs[s][3] for s in (8,16,32))

names = [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in (8, 16, 32)]
torch.onnx.export(FakeYuNet(), torch.zeros(1, 3, 64, 64), sys.argv[1] if len(sys.argv) > 1 else "fake-yunet.onnx", input_names=["input"], output_names=names,
                  dynamic_axes={"input": {2: "h", 3: "w"}}, opset_version=11)
print("ok")
