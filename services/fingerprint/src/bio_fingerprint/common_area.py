"""How much skin the two crops of a genuine pair share, in a small / tiny development set: the part of the
set's error that no minutiae matcher can remove.

engine/devsets.small_print cuts every impression to its own window (a random centre shift and rotation), so
two impressions of a finger can share little or nothing of the finger. The full impressions the crops come
from match reliably (EER 0.00 % on DB1_B, DB2_B and pyfnprint): matching impression j onto impression i
gives the alignment that maps crop j's window into impression i, and the intersection of the two windows
over the smaller one is the pair's common fraction. Under LOW_FRACTION (a tenth of a tiny print holds 2-3 of
its 20-25 minutiae) a genuine pair has fewer common minutiae than the 3 pairs any score needs: the share of
such pairs is a floor under the set's FNMR at every threshold that keeps impostors out.

Only the crop windows are intersected, not the ridge area inside them (a window can reach past the
impression's border), so the common fraction is an upper bound on the skin shared and the floor a lower
bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

LOW_FRACTION = 0.10
# full impressions whose minutiae score (before the field factor) is under this (about FMR 1e-4 on the
# shipped score table) are not trusted to align
ALIGNED_SCORE = 10.0


def _alignment(a: Any, b: Any) -> tuple[float, float, float, float]:
    """(minutiae score, rotation, x offset, y offset) mapping prepared template b onto a: the score before
    the orientation-field factor, which templates prepared without their fields get at the prior's value
    (the pairing and its alignment do not depend on the fields)."""
    from bio_fingerprint.engine.matcher import match_raw

    r = match_raw(*a, *b)
    return float(r[8]), float(r[5]), float(r[6]), float(r[7])


def common_fractions(full_rows: list[tuple[Path, str]], full_templates: list[np.ndarray],
                     folder: Path) -> list[float | None]:
    """Per genuine pair of the set in ``folder`` (in evaluation.fvc_pairs order), the common fraction of the
    two crop windows, or None when their full impressions do not align reliably. The set's rows are the
    full set's rows in the same order (devsets.write_set), each with its crop params."""
    from bio_fingerprint.bench import gray
    from bio_fingerprint.engine.devsets import crop_window, read_set
    from bio_fingerprint.engine.evaluation import fvc_pairs
    from bio_fingerprint.engine.matcher import prepare

    rows = read_set(folder)
    if len(rows) != len(full_rows):
        raise ValueError(f"{folder} has {len(rows)} prints, its source {len(full_rows)}")
    windows, areas = [], []
    for row, (path, _) in zip(rows, full_rows, strict=True):
        if row["source"] != path.name:
            raise ValueError(f"{folder}: {row['image']} was cut from {row['source']}, not {path.name}")
        params = row["params"]
        windows.append(crop_window(gray(path), params))
        areas.append(float(params["window"][2] * params["window"][3]))
    prepared: dict[int, Any] = {}
    out: list[float | None] = []
    for i, j in fvc_pairs([r["finger_id"] for r in rows])["genuine"]:
        for k in (i, j):
            if k not in prepared:
                prepared[k] = prepare(full_templates[k])
        score, rot, ox, oy = _alignment(prepared[i], prepared[j])
        if score < ALIGNED_SCORE:
            out.append(None)
            continue
        c, s = np.cos(rot), np.sin(rot)
        j_in_i = windows[j] @ np.array([[c, -s], [s, c]]).T + np.array([ox, oy])
        inter, _ = cv2.intersectConvexConvex(windows[i].astype(np.float32), j_in_i.astype(np.float32))
        out.append(float(inter) / min(areas[i], areas[j]))
    return out


def summary(fractions: list[float | None], genuine: np.ndarray, impostor_all: np.ndarray) -> dict[str, Any]:
    """The floor, and the all-pairs EER over the genuine pairs that share at least LOW_FRACTION (the matcher's
    error where matching is possible: a diagnosis, not a result to quote instead of the set's EER)."""
    from bio_fingerprint.engine.evaluation import metrics

    known = np.array([f if f is not None else np.nan for f in fractions], float)
    aligned = ~np.isnan(known)
    low = aligned & (known < LOW_FRACTION)
    shared = aligned & ~low
    return {
        "genuine_pairs": len(known),
        "aligned": int(aligned.sum()),
        "median_fraction": float(np.median(known[aligned])) if aligned.any() else None,
        "under_low_fraction": int(low.sum()),
        "low_fraction": LOW_FRACTION,
        "fnmr_floor": float(low.sum() / max(len(known), 1)),
        "all_pairs_eer_where_shared": metrics(genuine[shared], impostor_all)["eer"] if shared.any() else None,
        "genuine_scores_of_low_pairs": [round(float(g), 2) for g in genuine[low]],
    }
