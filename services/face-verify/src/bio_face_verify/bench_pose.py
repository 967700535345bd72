"""The frontal check measured: false rejects of near-frontal photos, roll of rotated copies, profile-like probes.

Splits (the tolerances were checked on the first and are reported on the second):

* **dev**: ``faces/face_recognition`` (every single-face photo in its truth.csv);
* **held-out**: ``faces/openface``, ``faces/facenet-pytorch/test_images``, ``faces/davidsandberg-facenet``.

``faces/facenet-pytorch/test_images_aligned`` (160 x 160 MTCNN crops resized without keeping the aspect
ratio, so faces are squashed vertically) is reported on its own: it is not a photo.

Per near-frontal photo:

* the pose under the service's tolerances (a reject there is a false reject);
* **roll**: the photo rotated in its plane by +-10 and +-20 degrees (PIL, counter-clockwise for positive,
  canvas expanded): the measured roll must move by minus the applied angle, within 5 degrees;
* **profile-like probes**: the data has no profile photos, so probes are made: the photo's plane turned
  about the vertical axis through the face by +-60 and +-75 degrees and re-projected (a perspective warp:
  the foreshortening of a turned head, not its parallax). A probe counts as rejected when the job would
  fail with ``non_frontal`` or ``no_face`` under ``pose_policy=reject``.

Also the estimator alone on the 3-D model projected at known yaw (45-90 degrees) with landmark noise.
"""

from __future__ import annotations

import csv
import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from bio_face_verify.engine.pose import PoseTolerance, estimate_pose, project_model
from bio_face_verify.engine.verify import AnalysisOptions, FaceImageError, Verifier
from bio_shared.images import decode_image

DEV = ("face_recognition",)
HELD_OUT = ("openface", "facenet-pytorch", "davidsandberg-facenet")
NOT_PHOTOS = ("test_images_aligned/",)
ROLLS = (-20, -10, 10, 20)
TURNS = (-75, -60, 60, 75)
ROLL_TOLERANCE_DEG = 5.0


def photos(faces_dir: Path, folders: tuple[str, ...], *, aligned: bool = False) -> list[Path]:
    """The single-face photos of the folders' truth.csv, byte-identical copies once."""
    out, seen = [], set()
    for folder in folders:
        with open(faces_dir / folder / "truth.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                path = faces_dir / folder / row["image"]
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                is_crop = any(row["image"].startswith(p) for p in NOT_PHOTOS)
                if is_crop == aligned and digest not in seen:
                    seen.add(digest)
                    out.append(path)
    return out


def rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True,
                                                   fillcolor=(128, 128, 128)))


def turn(rgb: np.ndarray, box: np.ndarray, degrees: float) -> np.ndarray:
    """The image plane turned about the vertical line through the face box's centre, seen from 3 focal
    lengths (focal = the longer side)."""
    h, w = rgb.shape[:2]
    f = float(max(w, h))
    depth = 3.0 * f
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    a = math.radians(degrees)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    dst = []
    for x, y in src:
        z = depth + (x - cx) * math.sin(a)
        dst.append([cx + depth * (x - cx) * math.cos(a) / z, cy + depth * (y - cy) / z])
    homography = cv2.getPerspectiveTransform(src, np.array(dst, dtype=np.float32))
    return cv2.warpPerspective(rgb, homography, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _outcome(verifier: Verifier, rgb: np.ndarray, opts: AnalysisOptions) -> dict[str, Any]:
    try:
        a = verifier.analyze(rgb, "image", opts)
    except FaceImageError as exc:
        return {"error": exc.code}
    return {**a.pose.as_dict(), "frontal": a.frontal, "box": a.face.box}


def measure_photo(verifier: Verifier, path: Path, tolerance: PoseTolerance) -> dict[str, Any]:
    opts = AnalysisOptions(pose_policy="flag", multiple_faces="largest", tolerance=tolerance, min_face_px=20)
    rgb = decode_image(path.read_bytes(), mode="rgb").pixels
    base = _outcome(verifier, rgb, opts)
    out: dict[str, Any] = {"image": f"{path.parent.name}/{path.name}", **{k: v for k, v in base.items() if k != "box"}}
    if "error" in base:
        return out
    out["rolls"] = {}
    for angle in ROLLS:
        got = _outcome(verifier, rotate(rgb, angle), opts)
        err = None if "error" in got else _wrap(got["roll"] - (base["roll"] - angle))
        out["rolls"][str(angle)] = {"roll": got.get("roll"), "error_deg": err, "failed": got.get("error")}
    out["turns"] = {}
    for angle in TURNS:
        got = _outcome(verifier, turn(rgb, base["box"], angle), opts)
        rejected = "error" in got or not got["frontal"]
        out["turns"][str(angle)] = {"yaw": got.get("yaw"), "rejected": rejected,
                                    "reason": got.get("error") or ("non_frontal" if rejected else None)}
    return out


def _wrap(deg: float) -> float:
    return round((deg + 180.0) % 360.0 - 180.0, 2)


def synthetic_profiles(tolerance: PoseTolerance, seed: int = 0) -> dict[str, Any]:
    """The estimator on the model projected at yaw 45..90 degrees with landmark noise of 2 % of the outer
    eye-corner distance: the share recognised as non-frontal."""
    rng = np.random.default_rng(seed)
    rejected = total = 0
    worst = 90.0
    for yaw in (45, 60, 75, 90):
        for sign in (-1, 1):
            for _ in range(25):
                pts = project_model(sign * yaw, rng.uniform(-10, 10), rng.uniform(-10, 10))
                scale = float(np.linalg.norm(pts[45] - pts[36])) or 1.0
                pose = estimate_pose(pts + rng.normal(0, 0.02 * max(scale, 20.0), pts.shape), 640, 480)
                total += 1
                rejected += not tolerance.is_frontal(pose)
                worst = min(worst, abs(pose.yaw))
    return {"probes": total, "rejected": rejected, "smallest_abs_yaw_read": round(worst, 1)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    analysed = [r for r in rows if "error" not in r]
    errors = [r["rolls"][k]["error_deg"] for r in analysed for k in r["rolls"] if r["rolls"][k]["error_deg"] is not None]
    roll_failed = sum(1 for r in analysed for k in r["rolls"] if r["rolls"][k]["error_deg"] is None)
    turns = [t for r in analysed for t in r["turns"].values()]
    rejected = [r["image"] for r in analysed if not r["frontal"]]
    return {
        "photos": len(rows), "no_face": [r["image"] for r in rows if "error" in r],
        "false_rejects": rejected, "false_reject_rate": round(len(rejected) / max(len(analysed), 1), 4),
        "max_abs": {axis: round(max((abs(r[axis]) for r in analysed), default=0.0), 1)
                    for axis in ("yaw", "pitch", "roll")},
        "roll": {"rotated_copies": len(errors) + roll_failed, "no_face": roll_failed,
                 "within_5_deg": sum(abs(e) <= ROLL_TOLERANCE_DEG for e in errors),
                 "max_abs_error_deg": round(max((abs(e) for e in errors), default=0.0), 2),
                 "mean_abs_error_deg": round(float(np.mean(np.abs(errors))) if errors else 0.0, 2)},
        "profile_probes": {"probes": len(turns), "rejected": sum(t["rejected"] for t in turns),
                           "by_reason": {reason: sum(t["reason"] == reason for t in turns)
                                         for reason in ("non_frontal", "no_face")},
                           "accepted": [f"{r['image']} turned {k}" for r in analysed
                                        for k, t in r["turns"].items() if not t["rejected"]]},
    }


def run_pose_bench(faces_dir: Path, tolerance: PoseTolerance,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    verifier = Verifier("dlib")
    report: dict[str, Any] = {"tolerance_deg": {"yaw": tolerance.max_yaw, "pitch": tolerance.max_pitch,
                                                "roll": tolerance.max_roll},
                              "splits": {"dev": list(DEV), "held_out": list(HELD_OUT)}}
    sets = {"dev": photos(faces_dir, DEV), "held_out": photos(faces_dir, HELD_OUT),
            "squashed_crops": photos(faces_dir, ("facenet-pytorch",), aligned=True)}
    for name, paths in sets.items():
        if progress:
            progress(f"pose on {name}: {len(paths)} photos ...")
        rows = [measure_photo(verifier, p, tolerance) for p in paths]
        report[name] = {"summary": summarise(rows), "photos": rows}
    report["synthetic_profiles"] = synthetic_profiles(tolerance)
    return report


def render(report: dict[str, Any]) -> list[str]:
    t = report["tolerance_deg"]
    lines = ["## Frontal check (68 landmarks + solvePnP)", "",
             f"Tolerance |yaw|, |pitch|, |roll| <= {t['yaw']:g}, {t['pitch']:g}, {t['roll']:g} deg, checked on the dev "
             f"split ({', '.join(report['splits']['dev'])}) and reported on the held-out one "
             f"({', '.join(report['splits']['held_out'])}).", "",
             "| set | photos | false rejects (rate) | max abs yaw / pitch / roll | rotated copies with roll within 5 deg "
             "| max roll error | profile-like probes rejected |", "|---|---:|---:|---|---:|---:|---:|"]
    for name in ("dev", "held_out", "squashed_crops"):
        s = report[name]["summary"]
        m, r, p = s["max_abs"], s["roll"], s["profile_probes"]
        lines.append(f"| {name} | {s['photos']} | {len(s['false_rejects'])} ({s['false_reject_rate']:.2%}) | "
                     f"{m['yaw']} / {m['pitch']} / {m['roll']} | {r['within_5_deg']} / {r['rotated_copies']} | "
                     f"{r['max_abs_error_deg']} | {p['rejected']} / {p['probes']} |")
    sp = report["synthetic_profiles"]
    lines += ["", f"Synthetic profiles (model at |yaw| 45-90 deg, 2 % landmark noise): {sp['rejected']} / {sp['probes']} "
              f"rejected; smallest |yaw| read {sp['smallest_abs_yaw_read']} deg."]
    for name in ("dev", "held_out"):
        s = report[name]["summary"]
        if s["false_rejects"] or s["profile_probes"]["accepted"] or s["no_face"]:
            lines.append(f"{name}: false rejects {s['false_rejects'] or 'none'}; probes accepted "
                         f"{s['profile_probes']['accepted'] or 'none'}; no face {s['no_face'] or 'none'}.")
    return lines
