"""pyfing's LEADER network as a native torch module (same weights, same layers).

pyfing builds LEADER as a Keras 3 functional model; on the torch backend every Keras layer call adds
Python overhead and NHWC<->NCHW transposes around each convolution. This module mirrors
``pyfing.minutiae_end_to_end.Leader._build_model`` layer by layer with plain torch ops (NCHW,
channels_last memory), loads the weights from the Keras model once, and runs under
``torch.inference_mode``. Outputs match the Keras model to about 1e-5 (checked in the tests).

Exact shortcuts on top (the same values up to float rounding; checked against pyfing's minutiae in the
tests): 1x1 convolutions run as GEMMs on the NHWC view, the per-pixel part of each inverted-bottleneck
block in cache-sized blocks of pixels with conv_red and conv_adj folded into one matrix; the per-pixel tail
of each head runs at half resolution before the nearest up-sampling, and the position head's 5x5
convolution of that up-sampling as four 3x3 phase convolutions at half resolution; the direction and type
heads run only around pixels whose NMS position passes the threshold (``LeaderNet.minutiae``); weights are
channels-last and GELU runs in place. About 0.2-0.3 s per FVC2002 print on one core, against ~0.9-1.3 s for
pyfing's Keras model on its bounding box.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_model: LeaderNet | None = None
_lock = threading.Lock()


def _channels_last(w: torch.Tensor) -> torch.Tensor:
    """A (out, in, kh, kw) weight laid out channels-last. With in == 1 both layouts are 'contiguous' and
    torch keeps the default one, so oneDNN then gives a stem convolution's output NCHW (4x slower there,
    and a copy before its layer norm): the strides are set explicitly."""
    _, i, kh, kw = w.shape
    return torch.empty_strided(w.shape, (kh * kw * i, 1, kw * i, i)).copy_(w)


def _conv_w(k: np.ndarray) -> torch.Tensor:  # keras (kh, kw, in, out) -> torch (out, in, kh, kw)
    return _channels_last(torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1))))


def _dw_w(k: np.ndarray) -> torch.Tensor:  # keras depthwise (kh, kw, in, mult) -> torch (in*mult, 1, kh, kw)
    kh, kw, cin, mult = k.shape
    w = np.ascontiguousarray(k.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw))
    return _channels_last(torch.from_numpy(w))


def _rhs(w: torch.Tensor) -> torch.Tensor:
    """An (out, in) weight as the right GEMM operand (in, out) of rows @ W^T. Under 8 outputs (the heads'
    6-channel convolutions) MKL is 2-3x faster reading it as the transpose of the (out, in) matrix."""
    return w.t().contiguous() if w.shape[0] >= 8 else w.contiguous().t()


def _gelu_(x: torch.Tensor) -> torch.Tensor:
    """GELU in place, on a tensor the network has just made (no second feature map to allocate and fill)."""
    out: torch.Tensor = torch.ops.aten.gelu_(x)
    return out


BLOCK_FLOATS = 1 << 18  # values (1 MiB of float32) per block of pixels in the 4x expansion of LeaderNet._ibc_rows


class LeaderNet(nn.Module):
    """Inference-only LEADER. ``forward`` takes (1, 1, H, W) float32 (0-255, H and W multiples of 32) and
    returns (H, W, 4): position probability, direction (radians), type probability, NMS position."""

    def __init__(self, keras_model: Any) -> None:  # pyfing's Keras 3 model (untyped)
        super().__init__()
        self.p: dict[str, dict[str, torch.Tensor]] = {}
        self.eps: dict[str, float] = {}
        for layer in keras_model.layers:
            w = [np.asarray(v) for v in layer.get_weights()]
            if not w:
                continue
            cls = type(layer).__name__
            d: dict[str, torch.Tensor] = {}
            if cls == "Conv2D":
                d["w"] = _conv_w(w[0])
                if len(w) > 1:
                    d["b"] = torch.from_numpy(w[1])
                d["dil"] = layer.dilation_rate[0]
            elif cls == "DepthwiseConv2D":
                d["w"] = _dw_w(w[0])
                if len(w) > 1:
                    d["b"] = torch.from_numpy(w[1])
            elif cls == "SeparableConv2D":
                d["dw"] = _dw_w(w[0])
                d["w"] = _conv_w(w[1])
                d["b"] = torch.from_numpy(w[2])
            elif cls == "LayerNormalization":
                d["g"] = torch.from_numpy(w[0])
                d["b"] = torch.from_numpy(w[1])
                self.eps[layer.name] = float(layer.epsilon)
            else:
                raise ValueError(f"unexpected layer {cls} {layer.name}")
            self.p[layer.name] = d
        for d in self.p.values():  # 1x1 convolutions as GEMM operands (precomputed: no lazy state)
            if "w" in d and d["w"].shape[-2:] == (1, 1):
                d["wl"] = d["w"][:, :, 0, 0].contiguous()
                d["wt"] = _rhs(d["wl"])
        for name in [n[: -len("_conv_red")] for n in self.p if n.endswith("_conv_red")]:
            self.p[f"{name}__folded"] = self._fold(name)
        self.p["head_conv_pos__phases"] = self._phases("head_conv_pos")

    # --- primitive layers ---
    def conv(self, name: str, x: torch.Tensor) -> torch.Tensor:
        d = self.p[name]
        w = d["w"]
        if w.shape[-1] == 1 and w.shape[1] >= 8:
            # 1x1 convolution as one GEMM over the channels of the NHWC view (channels_last memory):
            # the thnn path of conv2d copies the bias and output around it
            y = torch.matmul(x.permute(0, 2, 3, 1), d["wt"])  # addmm would first copy the broadcast bias
            b = d.get("b")
            if b is not None:
                y.add_(b)
            return y.permute(0, 3, 1, 2)
        dil = int(d["dil"])
        return F.conv2d(x, w, d.get("b"), padding=dil * (w.shape[-1] - 1) // 2, dilation=dil)

    def ln(self, name: str, x: torch.Tensor) -> torch.Tensor:
        d = self.p[name]
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), d["g"], d["b"], self.eps[name])
        return y.permute(0, 3, 1, 2)

    def dwconv(self, name: str, x: torch.Tensor) -> torch.Tensor:
        d = self.p[name]
        w = d["w"]
        return F.conv2d(x, w, d.get("b"), padding=(w.shape[-1] - 1) // 2, groups=x.shape[1])

    # --- blocks (as in pyfing's Leader._build_model) ---
    def stem(self, name: str, x: torch.Tensor, max_pooling: bool) -> torch.Tensor:
        x = torch.cat([self.conv(f"{name}_conv", x), self.conv(f"{name}_dilated_conv", x)], 1)
        x = _gelu_(self.ln(f"{name}_ln", x))
        return F.max_pool2d(x, 2) if max_pooling else F.avg_pool2d(x, 2)

    def sep(self, name: str, x: torch.Tensor) -> torch.Tensor:
        d = self.p[f"{name}_conv"]
        dw = d["dw"]
        x = F.conv2d(x, dw, None, padding=(dw.shape[-1] - 1) // 2, groups=x.shape[1])
        x = F.conv2d(x, d["w"], d["b"])
        return _gelu_(self.ln(f"{name}_ln", x))

    def _fold(self, name: str) -> dict[str, torch.Tensor]:
        """conv_adj(x_in + conv_red(g)) = Wa x_in + (Wa Wr) g + (Wa br + ba): the residual sum feeds only
        conv_adj, so the two 1x1 convolutions fold into one from the 4x expansion straight to the block's
        output (fewer multiply-adds; the same values up to float rounding)."""
        wr = self.p[f"{name}_conv_red"]["w"][:, :, 0, 0].double()
        br = self.p[f"{name}_conv_red"]["b"].double()
        wa = self.p[f"{name}_conv_adj"]["w"][:, :, 0, 0].double()
        ba = self.p[f"{name}_conv_adj"]["b"].double()
        return {"wg_t": _rhs((wa @ wr).float()), "wx_t": _rhs(wa.float()), "b": (wa @ br + ba).float()}

    def _ibc_rows(self, name: str, x_in: torch.Tensor, xd: torch.Tensor) -> torch.Tensor:
        """The per-pixel part of ``ibc`` on (..., C) rows (NHWC view or gathered pixels); xd = depthwise conv.
        Taken in blocks of pixels whose 4x expansion holds BLOCK_FLOATS values (1 MiB), so that it stays in
        cache between the two GEMMs and GELU instead of going through memory (~50 MB for a whole print)."""
        shape = xd.shape[:-1]
        xd, x_in = xd.reshape(-1, xd.shape[-1]), x_in.reshape(-1, x_in.shape[-1])
        ln, exp, f = self.p[f"{name}_ln"], self.p[f"{name}_conv_exp"], self.p[f"{name}__folded"]
        eps = self.eps[f"{name}_ln"]
        out = torch.empty(xd.shape[0], f["b"].shape[0])
        rows = max(256, BLOCK_FLOATS // exp["wt"].shape[1])
        for s in range(0, xd.shape[0], rows):
            e = s + rows
            v = F.layer_norm(xd[s:e], (xd.shape[-1],), ln["g"], ln["b"], eps)
            v = torch.matmul(v, exp["wt"])
            v.add_(exp["b"])
            _gelu_(v)
            o = out[s:e]
            torch.matmul(v, f["wg_t"], out=o)
            o.addmm_(x_in[s:e], f["wx_t"])
            o.add_(f["b"])
        return out.reshape(*shape, -1)

    def ibc(self, name: str, x: torch.Tensor) -> torch.Tensor:
        xd = self.dwconv(f"{name}_depthwise_conv", x)
        return self._ibc_rows(name, x.permute(0, 2, 3, 1), xd.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    @staticmethod
    def down(x: torch.Tensor) -> torch.Tensor:
        c1 = x.shape[1] // 2
        return torch.cat([F.max_pool2d(x[:, :c1], 2), F.avg_pool2d(x[:, c1:], 2)], 1)

    @staticmethod
    def up(x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return x if skip is None else torch.cat([x, skip], 1)

    def head(self, name: str, x: torch.Tensor, up: bool = True) -> torch.Tensor:
        # Keras: up-sample, 1x1 conv, layer norm, 1x1 conv + gelu. All but the up-sampling act per pixel,
        # so they commute with nearest up-sampling: computed on the half-resolution map (same values,
        # a quarter of the work), then up-sampled (``up``).
        x = self.ibc(f"{name}_ibc", x)
        x = self.ln(f"{name}_ln", self.conv(f"{name}_conv1", x))
        x = _gelu_(self.conv(f"{name}_conv2", x))
        return self.up(x) if up else x

    def _phases(self, name: str) -> dict[str, torch.Tensor]:
        """The 5x5 convolution ``name`` of a nearest 2x up-sampled map as a 3x3 convolution of the map itself
        with one output per phase (row and column parity) of the up-sampled pixel: a tap at full-resolution
        offset dy reads half-resolution offset floor((parity + dy) / 2)."""
        w, b = self.p[name]["w"].double(), self.p[name]["b"].double()
        o, c, kk, _ = w.shape
        r = (kk - 1) // 2
        k = torch.zeros(o, 2, 2, c, 3, 3, dtype=torch.float64)
        for p in range(2):
            for q in range(2):
                for dy in range(kk):
                    for dx in range(kk):
                        k[:, p, q, :, (p + dy - r) // 2 + 1, (q + dx - r) // 2 + 1] += w[:, :, dy, dx]
        return {"w": _channels_last(k.reshape(o * 4, c, 3, 3).float()), "b": b.repeat_interleave(4).float()}

    def conv_up(self, name: str, half: torch.Tensor) -> torch.Tensor:
        """``conv(name, up(half))`` without making the up-sampled map: 4 phase outputs at half resolution,
        interleaved by pixel_shuffle (the same values up to float rounding, a third of the multiply-adds)."""
        d = self.p[f"{name}__phases"]
        return F.pixel_shuffle(F.conv2d(half, d["w"], d["b"], padding=1), 2)

    # per-pixel layers on gathered feature rows (k, channels)
    def _lin(self, name: str, v: torch.Tensor) -> torch.Tensor:
        d = self.p[name]
        return F.linear(v, d["wl"], d.get("b"))

    def _ln_rows(self, name: str, v: torch.Tensor) -> torch.Tensor:
        d = self.p[name]
        return F.layer_norm(v, (v.shape[1],), d["g"], d["b"], self.eps[name])

    def head_at(self, name: str, x: torch.Tensor, need: torch.Tensor) -> torch.Tensor:
        """``head`` before its up-sampling, computed only at the half-resolution pixels where ``need``
        (H/2, W/2 bool) is set (zero elsewhere): every layer after the depthwise convolution acts per pixel.
        (The depthwise convolution gathered at those pixels only was 2x slower than the whole map's.)"""
        xd = self.dwconv(f"{name}_ibc_depthwise_conv", x)
        c = x.shape[1]
        h2, w2 = need.shape
        idx = need.reshape(-1).nonzero()[:, 0]
        vx = x.permute(0, 2, 3, 1).reshape(-1, c)[idx]
        v = self._ibc_rows(f"{name}_ibc", vx, xd.permute(0, 2, 3, 1).reshape(-1, c)[idx])
        v = self._ln_rows(f"{name}_ln", self._lin(f"{name}_conv1", v))
        v = _gelu_(self._lin(f"{name}_conv2", v))
        half = torch.zeros(h2 * w2, v.shape[1])
        half[idx] = v
        return half.reshape(1, h2, w2, -1).permute(0, 3, 1, 2)

    def conv_at_up(self, name: str, half: torch.Tensor, iy: torch.Tensor, ix: torch.Tensor) -> torch.Tensor:
        """Convolution ``name`` of the nearest 2x up-sampling of ``half`` (1, C, H/2, W/2), at full-resolution
        pixels (iy, ix) only: (k, out) rows (the up-sampled map is never made)."""
        d = self.p[name]
        w = d["w"]
        kk = w.shape[-1]
        off = torch.arange(kk) - (kk - 1) // 2
        h, wd = 2 * half.shape[2], 2 * half.shape[3]
        yy, xx = iy[:, None] + off, ix[:, None] + off  # (k, kk) full-resolution rows and columns read
        inside = ((yy >= 0) & (yy < h))[:, :, None] & ((xx >= 0) & (xx < wd))[:, None, :]  # zero padding
        taps = half[0][:, yy.clamp(0, h - 1)[:, :, None] // 2, xx.clamp(0, wd - 1)[:, None, :] // 2]
        out = torch.einsum("ckij,ocij->ko", taps * inside, w)
        b = d.get("b")
        return out if b is None else out + b

    def trunk(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.stem("stem0", inp, True)
        x1 = self.stem("stem1", inp, False)
        skips = []
        for i in range(4):
            x = self.sep(f"enc0_{i}", x)
            skips.append(x)
            x = self.down(x)
        for i in reversed(range(4)):
            x = self.up(self.sep(f"dec0_{i}", x), skips[i])
        xd = torch.cat([_gelu_(self.conv(f"attention_conv_d{d}", x)) for d in (1, 3, 6)], 1)
        x = torch.cat([x * torch.sigmoid(self.conv("attention_s", xd)), x1], 1)
        skips = []
        for i in range(4):
            x = self.ibc(f"enc1_{i}", x)
            skips.append(x)
            x = self.down(x)
        for i in reversed(range(4)):
            x = self.up(self.ibc(f"dec1_{i}", x), skips[i])
        return x

    def positions(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pos = torch.sigmoid(self.conv_up("head_conv_pos", self.head("head_0", x, up=False)))
        # one channel, pooled as a (1, H, W) map: channels-last strides would send max_pool2d down its
        # per-channel vector path (4x slower with a single channel)
        pos_gb = self.conv("nms_Gaussian_blur", pos)[0]
        # 7x7 max filter as two 1-D passes (the same values)
        pos_mp = F.max_pool2d(F.max_pool2d(pos_gb, (7, 1), stride=1, padding=(3, 0)), (1, 7), stride=1, padding=(0, 3))
        return pos, (pos_mp * (pos_gb == pos_mp).float())[None]

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """All four output maps, as pyfing's Keras model: (H, W, 4)."""
        x = self.trunk(inp)
        h = [self.head(f"head_{k}", x) for k in range(3)]
        pos, pos_nms = self.positions(x)
        dxy = self.conv("head_conv_dir", h[1])
        direction = torch.atan2(dxy[:, 1:2], dxy[:, 0:1])
        typ = torch.sigmoid(self.conv("head_conv_typ", h[2]))
        return torch.cat([pos, direction, typ, pos_nms], 1)[0].permute(1, 2, 0)

    def minutiae(self, inp: torch.Tensor, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(yx of pixels with NMS position >= threshold, their direction, type probability): the same
        values as ``forward`` at those pixels; the direction and type heads run only around them."""
        x = self.trunk(inp)
        _, pos_nms = self.positions(x)
        pos_nms = pos_nms[0, 0]
        cand = pos_nms >= threshold
        yx = cand.nonzero()
        if len(yx) == 0:
            z = np.zeros(0, np.float32)
            return yx.numpy(), z, z, z
        # full-resolution pixels within the final 5x5 convolutions' reach, then their half-resolution parents
        near = F.max_pool2d(cand[None, None].float(), 5, stride=1, padding=2)
        need = F.max_pool2d(near, 2)[0, 0] > 0
        iy, ix = yx[:, 0], yx[:, 1]
        dxy = self.conv_at_up("head_conv_dir", self.head_at("head_1", x, need), iy, ix)
        direction = torch.atan2(dxy[:, 1], dxy[:, 0])
        typ = torch.sigmoid(self.conv_at_up("head_conv_typ", self.head_at("head_2", x, need), iy, ix)[:, 0])
        return yx.numpy(), direction.numpy(), typ.numpy(), pos_nms[iy, ix].numpy()


def _keep_freed_memory() -> None:
    """glibc serves allocations over 128 KiB-32 MiB with fresh mmap()s and unmaps them when freed, so each
    of the network's feature maps (up to ~50 MB) is page-faulted in anew on every call: about 3/4 of the
    time of an element-wise op such as gelu. Serving them from the heap and not trimming it makes the
    process keep (and reuse) its peak memory instead (a few hundred MB for a 500 dpi print); about 1.6x
    faster inference. ``BIO_FINGERPRINT_MALLOPT=0`` leaves glibc's defaults."""
    if os.environ.get("BIO_FINGERPRINT_MALLOPT", "1") == "0":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    libc.mallopt(-4, 0)  # M_MMAP_MAX: no mmap()ed chunks
    libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD: keep up to 512 MiB of freed heap


def get_model() -> LeaderNet:
    """The torch LEADER, built once per process from pyfing's shipped weights."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _keep_freed_memory()
                from pyfing.minutiae_end_to_end import Leader

                _model = LeaderNet(Leader().model).eval()
    return _model


def run(image: np.ndarray, quality_threshold: float = 0.6, type_threshold: float = 0.5) -> np.ndarray:
    """pyfing ``Leader.run`` at 500 dpi with the torch network: (n, 5) float32 rows
    (x, y, pyfing direction, 1 ending / 0 bifurcation, quality)."""
    net = get_model()
    h, w = image.shape
    input_w, input_h = (w + 31) // 32 * 32, (h + 31) // 32 * 32  # as pyfing's _compute_size(w, h, 32, 0)
    bl, bt = (input_w - w) // 2, (input_h - h) // 2
    import cv2

    ir = cv2.copyMakeBorder(image, bt, input_h - h - bt, bl, input_w - w - bl, cv2.BORDER_CONSTANT,
                            value=image[0, 0].tolist())
    with torch.inference_mode():
        t = torch.from_numpy(ir.astype(np.float32))[None, None].contiguous(memory_format=torch.channels_last)
        yx, direction, typ, quality = net.minutiae(t, quality_threshold)
    iy, ix = yx[:, 0] - bt, yx[:, 1] - bl
    keep = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    if not keep.any():
        return np.zeros((0, 5), np.float32)
    return np.stack([ix[keep], iy[keep], direction[keep], (typ[keep] >= type_threshold).astype(np.float32),
                     quality[keep]], 1).astype(np.float32)
