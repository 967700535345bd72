"""MTCNN face detection (Zhang et al. 2016) with facenet-pytorch's networks and weights, in torch + numpy.

A port of facenet-pytorch 2.6.0's ``detect_face`` (MIT licence) for one image at a time, with
its own non-maximum suppression in place of ``torchvision.ops.batched_nms`` and, on CPU, OpenCV's
INTER_AREA for the area-averaged resizing (the same average as torch's, several times faster): the same three stages
(PNet over an image pyramid, RNet and ONet refinement), the same thresholds, box regression,
squaring and padding, so boxes, probabilities and the five landmarks match the library's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn.functional import interpolate

from bio_face_verify.engine.nets import load_mtcnn_nets

DETECTOR_NAME = "mtcnn"
DETECTOR_VERSION = "facenet-pytorch-2.6.0"
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # as seen in the image


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # x1, y1, x2, y2 in pixels of the image given to detect()
    confidence: float  # ONet face probability
    landmarks: np.ndarray  # 5 x 2: LANDMARK_NAMES, (x, y)

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def scaled(self, factor: float) -> Face:
        return Face(self.box * factor, self.confidence, self.landmarks * factor)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union",
        plus_one: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression: indices kept, best score first. A box is dropped when its
    overlap with a kept one is above ``threshold``; overlap is IoU (``union``, the torchvision
    semantics) or intersection over the smaller area (``min``). ``plus_one`` counts pixels
    inclusively, as the original MTCNN code does."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    extra = 1.0 if plus_one else 0.0
    area = np.maximum(0.0, x2 - x1 + extra) * np.maximum(0.0, y2 - y1 + extra)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + extra)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + extra)
        inter = w * h
        if mode == "min":
            denom = np.minimum(area[i], area[rest])
        else:
            denom = area[i] + area[rest] - inter
        overlap = np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _imresample(img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return interpolate(img, size=size, mode="area")


def _generate_boxes(reg: torch.Tensor, probs: torch.Tensor, scale: float, thresh: float) -> torch.Tensor:
    stride, cellsize = 2, 12
    reg = reg.permute(1, 0, 2, 3)
    mask = probs >= thresh
    mask_inds = mask.nonzero()
    score = probs[mask]
    reg = reg[:, mask].permute(1, 0)
    bb = mask_inds[:, 1:].type(reg.dtype).flip(1)
    q1 = ((stride * bb + 1) / scale).floor()
    q2 = ((stride * bb + cellsize - 1 + 1) / scale).floor()
    return torch.cat([q1, q2, score.unsqueeze(1), reg], dim=1)


def _bbreg(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out = boxes.clone()
    out[:, :4] = torch.stack([boxes[:, 0] + reg[:, 0] * w, boxes[:, 1] + reg[:, 1] * h,
                              boxes[:, 2] + reg[:, 2] * w, boxes[:, 3] + reg[:, 3] * h]).permute(1, 0)
    return out


def _rerec(boxes: torch.Tensor) -> torch.Tensor:
    """Make boxes square around their centre (side = the longer side)."""
    out = boxes.clone()
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.max(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, :2] + side.repeat(2, 1).permute(1, 0)
    return out


def _pad(boxes: torch.Tensor, w: int, h: int) -> tuple[np.ndarray, ...]:
    b = boxes.trunc().int().cpu().numpy()
    x, y, ex, ey = b[:, 0].copy(), b[:, 1].copy(), b[:, 2].copy(), b[:, 3].copy()
    x[x < 1] = 1
    y[y < 1] = 1
    ex[ex > w] = w
    ey[ey > h] = h
    return y, ey, x, ex


def _crops(img: torch.Tensor, rgbf: np.ndarray | None, boxes: torch.Tensor, size: int, w: int, h: int
           ) -> tuple[torch.Tensor, np.ndarray]:
    """Each box's pixels resized to size x size (area average), normalised; ``rgbf`` (float32 HxWx3) is
    used on CPU through OpenCV, ``img`` (1x3xHxW tensor) with torch otherwise."""
    y, ey, x, ex = _pad(boxes, w, h)
    crops, valid = [], []
    for k in range(len(y)):
        if ey[k] > (y[k] - 1) and ex[k] > (x[k] - 1):
            if rgbf is not None:
                import cv2

                patch = cv2.resize(rgbf[(y[k] - 1):ey[k], (x[k] - 1):ex[k]], (size, size), interpolation=cv2.INTER_AREA)
                crops.append(torch.from_numpy(patch).permute(2, 0, 1).unsqueeze(0))
            else:
                crops.append(_imresample(img[:, :, (y[k] - 1):ey[k], (x[k] - 1):ex[k]], (size, size)))
            valid.append(k)
    if not crops:
        return img.new_zeros((0, 3, size, size)), np.zeros(0, dtype=np.int64)
    return (torch.cat(crops, dim=0).to(img.device) - 127.5) * 0.0078125, np.asarray(valid, dtype=np.int64)


def _batched(net: torch.nn.Module, data: torch.Tensor, batch: int = 512) -> tuple[torch.Tensor, ...]:
    outs = [net(data[i:i + batch]) for i in range(0, len(data), batch)]
    return tuple(torch.cat(v, dim=0) for v in zip(*outs, strict=True))


class MTCNN:
    """Detector holding the three networks (load once per process, reuse for every image)."""

    name = DETECTOR_NAME
    version = DETECTOR_VERSION

    def __init__(self, device: str = "cpu", min_face_size: int = 20,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), factor: float = 0.709) -> None:
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = (net.to(self.device) for net in load_mtcnn_nets())
        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.factor = factor
        self._lock = threading.Lock()  # torch modules are shared; one image at a time per process
        if self.device.type == "cpu":
            import cv2

            cv2.setNumThreads(torch.get_num_threads())  # as many as torch: one per worker process

    def detect(self, rgb: np.ndarray, min_face_size: int | None = None) -> list[Face]:
        """All faces of an HxWx3 uint8 RGB image, most confident first. ``min_face_size`` (pixels) sets
        where the image pyramid starts: the larger, the fewer scales and the faster."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB array, got shape {rgb.shape}")
        with self._lock, torch.inference_mode():
            boxes, points = self._detect(rgb, min_face_size or self.min_face_size)
        faces = [Face(boxes[i, :4].astype(np.float64), float(boxes[i, 4]), points[i].astype(np.float64))
                 for i in range(len(boxes))]
        return sorted(faces, key=lambda f: -f.confidence)

    def _level(self, rgbf: np.ndarray | None, img: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """One pyramid level, area-averaged. On CPU OpenCV's INTER_AREA computes the same average several
        times faster than torch's adaptive pooling (the largest cost of a detection otherwise)."""
        if rgbf is None:
            return _imresample(img, size)
        import cv2

        level = cv2.resize(rgbf, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(level).permute(2, 0, 1).unsqueeze(0)

    def _detect(self, rgb: np.ndarray, min_face_size: int) -> tuple[np.ndarray, np.ndarray]:
        t1, t2, t3 = self.thresholds
        img = torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).to(self.device).permute(2, 0, 1).unsqueeze(0).float()
        h, w = img.shape[2:4]
        rgbf = np.ascontiguousarray(rgb, dtype=np.float32) if self.device.type == "cpu" else None
        m = 12.0 / max(12, min_face_size)
        minl = min(h, w) * m
        scales, scale = [], m
        while minl >= 12:
            scales.append(scale)
            scale *= self.factor
            minl *= self.factor

        # Stage 1: PNet over the pyramid, NMS per scale, then across scales.
        found = []
        for scale in scales:
            size = (int(h * scale + 1), int(w * scale + 1))
            data = (self._level(rgbf, img, size) - 127.5) * 0.0078125
            reg, probs = self.pnet(data)
            cand = _generate_boxes(reg, probs[:, 1], scale, t1)
            if len(cand):
                keep = nms(cand[:, :4].cpu().numpy(), cand[:, 4].cpu().numpy(), 0.5)
                found.append(cand[torch.as_tensor(keep, device=self.device)])
        empty = (np.zeros((0, 5)), np.zeros((0, 5, 2)))
        if not found:
            return empty
        boxes = torch.cat(found, dim=0)
        keep = nms(boxes[:, :4].cpu().numpy(), boxes[:, 4].cpu().numpy(), 0.7)
        boxes = boxes[torch.as_tensor(keep, device=self.device)]
        regw = boxes[:, 2] - boxes[:, 0]
        regh = boxes[:, 3] - boxes[:, 1]
        boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                             boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh,
                             boxes[:, 4]]).permute(1, 0)
        boxes = _rerec(boxes)

        # Stage 2: RNet on 24x24 crops.
        data, valid = _crops(img, rgbf, boxes, 24, w, h)
        if not len(valid):
            return empty
        boxes = boxes[torch.as_tensor(valid, device=self.device)]
        reg, probs = _batched(self.rnet, data)
        score = probs[:, 1]
        ipass = score > t2
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        reg = reg[ipass]
        if not len(boxes):
            return empty
        kept = torch.as_tensor(nms(boxes[:, :4].cpu().numpy(), boxes[:, 4].cpu().numpy(), 0.7), device=self.device)
        boxes = _rerec(_bbreg(boxes[kept], reg[kept]))

        # Stage 3: ONet on 48x48 crops: final boxes, probabilities and the five landmarks.
        data, valid = _crops(img, rgbf, boxes, 48, w, h)
        if not len(valid):
            return empty
        boxes = boxes[torch.as_tensor(valid, device=self.device)]
        reg, pts, probs = _batched(self.onet, data)
        score = probs[:, 1]
        ipass = score > t3
        pts = pts[ipass]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        reg = reg[ipass]
        if not len(boxes):
            return empty
        w_i = (boxes[:, 2] - boxes[:, 0] + 1).unsqueeze(1)
        h_i = (boxes[:, 3] - boxes[:, 1] + 1).unsqueeze(1)
        px = w_i * pts[:, :5] + boxes[:, 0:1] - 1
        py = h_i * pts[:, 5:10] + boxes[:, 1:2] - 1
        points = torch.stack((px, py), dim=2)
        boxes = _bbreg(boxes, reg)
        keep = nms(boxes[:, :4].cpu().numpy(), boxes[:, 4].cpu().numpy(), 0.7, mode="min", plus_one=True)
        return boxes.cpu().numpy()[keep], points.cpu().numpy()[keep]


def extract_face(rgb: np.ndarray, box: np.ndarray, image_size: int = 160, margin: int = 0) -> np.ndarray:
    """facenet-pytorch's ``extract_face``: the box plus ``margin`` (pixels of the output), clipped to the
    image, resized bilinearly to image_size x image_size. Returns uint8 RGB."""
    from PIL import Image

    h, w = rgb.shape[:2]
    mx = margin * (box[2] - box[0]) / (image_size - margin)
    my = margin * (box[3] - box[1]) / (image_size - margin)
    crop = (int(max(box[0] - mx / 2, 0)), int(max(box[1] - my / 2, 0)),
            int(min(box[2] + mx / 2, w)), int(min(box[3] + my / 2, h)))
    img = Image.fromarray(rgb).crop(crop).resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)
