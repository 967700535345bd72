"""The dlib face descriptor (``dlib_face_recognition_resnet_model_v1``) run with torch.

Shared by the face services (face recognition, face verification); torch is imported only when a
network is loaded.

The dlib-bin wheel has no BLAS, so its ResNet forward pass costs 100-150 ms per face on one core here;
torch's oneDNN convolutions run the same network several times faster. The weights are read from the
very same ``.dat`` file (no conversion step, nothing downloaded): dlib serialises each parameter tensor
as a small header (version 2 and the four dimensions in dlib's compact integer encoding) followed by
raw little-endian float32 values, in input-to-output order. The network is dlib's ``anet_type`` from
``dnn_face_recognition_ex.cpp``:

    input 150x150 RGB, (pixel - mean) / 256
    con 32 7x7/2, affine, relu, max_pool 3x3/2
    3 x res 32;  res_down 64, 3 x res 64;  res_down 128, 2 x res 128;  res_down 256, 2 x res 256;  res_down 256
    avg_pool_everything, fc_no_bias 128

``res``: relu(x + affine(con3x3(relu(affine(con3x3(x)))))); ``res_down``: the first convolution has stride 2
and no padding and the shortcut is a 2x2/2 average pool; dlib's add_prev zero-pads the smaller tensor
(channels and the bottom/right border). Convolutions with stride 1 pad by 1, strided ones by 0 (dlib's
defaults). The result agrees with dlib's own forward pass to about 1e-5 (checked by the tests).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

MEAN_RGB = (122.782, 117.001, 104.298)
_LEVELS = [(32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True)]  # (filters, blocks, down)


def _enc(v: int) -> bytes:
    out = []
    while True:
        out.append(v & 0xFF)
        v >>= 8
        if v == 0:
            break
    return bytes([len(out)]) + bytes(out)


def _layout() -> list[tuple[str, tuple[int, ...]]]:
    """The parameter tensors in file order: (kind, shape of the layer's weights)."""
    spec: list[tuple[str, tuple[int, ...]]] = [("con", (32, 3, 7, 7)), ("affine", (32,))]
    channels = 32
    for filters, blocks, _down in _LEVELS:
        for b in range(blocks):
            first_in = channels if b == 0 else filters
            spec += [("con", (filters, first_in, 3, 3)), ("affine", (filters,)),
                     ("con", (filters, filters, 3, 3)), ("affine", (filters,))]
        channels = filters
    spec.append(("fc", (256, 128)))
    return spec


def read_dlib_resnet(path: Path | str) -> list[np.ndarray]:
    """Every parameter tensor of the .dat file, in network order (raises ValueError on any surprise)."""
    data = Path(path).read_bytes()
    pos, out = 0, []
    for kind, shape in _layout():
        if kind == "con":
            n = int(np.prod(shape)) + shape[0]
            dims = (n, 1, 1, 1)
        elif kind == "affine":
            n = 2 * shape[0]
            dims = (n, 1, 1, 1)
        else:
            n = shape[0] * shape[1]
            dims = (shape[0], shape[1], 1, 1)
        header = _enc(2) + b"".join(_enc(d) for d in dims)
        at = data.find(header, pos)
        if at < 0 or at - pos > 4096:  # headers are separated by a few hundred bytes of layer details
            raise ValueError(f"unexpected layout of the dlib model file near byte {pos} ({kind} {shape})")
        start = at + len(header)
        out.append(np.frombuffer(data, dtype="<f4", count=n, offset=start).copy())
        pos = start + 4 * n
    return out


class TorchResNet:
    """Forward pass of the dlib face ResNet on aligned 150x150 RGB chips."""

    def __init__(self, path: Path | str, device: str = "cpu") -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        tensors = iter(read_dlib_resnet(path))
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        for kind, shape in _layout():
            t = next(tensors)
            if kind == "con":
                w = t[: int(np.prod(shape))].reshape(shape)
                b = t[int(np.prod(shape)):]
                self.layers.append((torch.from_numpy(w.copy()), torch.from_numpy(b.copy())))
            elif kind == "affine":
                k = shape[0]
                self.layers.append((torch.from_numpy(t[:k].reshape(1, k, 1, 1).copy()),
                                    torch.from_numpy(t[k:].reshape(1, k, 1, 1).copy())))
            else:
                self.fc = torch.from_numpy(t.reshape(shape).copy())
        self.mean = torch.tensor(MEAN_RGB, dtype=torch.float32).reshape(1, 3, 1, 1)
        if self.device.type != "cpu":
            self.layers = [(a.to(self.device), b.to(self.device)) for a, b in self.layers]
            self.fc, self.mean = self.fc.to(self.device), self.mean.to(self.device)
        self.lock = threading.Lock()

    def _con(self, x: torch.Tensor, i: int, stride: int) -> torch.Tensor:
        w, b = self.layers[i]
        pad = 0 if stride != 1 else w.shape[2] // 2
        return self.torch.nn.functional.conv2d(x, w, b, stride=stride, padding=pad)

    def _affine(self, x: torch.Tensor, i: int) -> torch.Tensor:
        g, b = self.layers[i]
        return x * g + b

    @staticmethod
    def _add_prev(a: torch.Tensor, b: torch.Tensor, F: Any) -> torch.Tensor:
        """dlib add_prev: element-wise sum, the smaller tensor zero-padded (channels, bottom, right)."""
        k, h, w = max(a.shape[1], b.shape[1]), max(a.shape[2], b.shape[2]), max(a.shape[3], b.shape[3])

        def grow(t: torch.Tensor) -> torch.Tensor:
            if t.shape[1:] == (k, h, w):
                return t
            padded: torch.Tensor = F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, k - t.shape[1]))
            return padded

        return grow(a) + grow(b)

    def forward(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB chips -> (N, 128) float32 descriptors."""
        torch = self.torch
        F = torch.nn.functional
        with self.lock, torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(chips)).to(self.device).permute(0, 3, 1, 2).float()
            x = (x - self.mean) / 256.0
            x = F.max_pool2d(F.relu(self._affine(self._con(x, 0, 2), 1)), 3, 2)
            i = 2
            for _filters, blocks, down in _LEVELS:
                for b in range(blocks):
                    strided = down and b == 0
                    y = F.relu(self._affine(self._con(x, i, 2 if strided else 1), i + 1))
                    y = self._affine(self._con(y, i + 2, 1), i + 3)
                    shortcut = F.avg_pool2d(x, 2, 2) if strided else x
                    x = F.relu(self._add_prev(y, shortcut, F))
                    i += 4
            x = x.mean(dim=(2, 3))
            out: np.ndarray = (x @ self.fc).cpu().numpy().astype(np.float32)
            return out


_loaded: dict[str, TorchResNet] = {}
_load_lock = threading.Lock()


def load_torch_resnet(path: Path | str) -> TorchResNet:
    """Once per process; torch's threads are set by bio_shared's configure_torch (one per process)."""
    key = str(path)
    with _load_lock:
        if key not in _loaded:
            from bio_shared.inference import configure_torch

            _loaded[key] = TorchResNet(path, device=configure_torch())  # the GPU when one is present
        return _loaded[key]
