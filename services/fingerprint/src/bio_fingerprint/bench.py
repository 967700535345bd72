"""Accuracy and speed reports of the fingerprint matcher: ``evaluate`` (one folder), ``bench`` (every
development set, with the sets each setting was chosen on), ``calibrate`` (the score-to-FMR tables).

Development protocol: settings are chosen leaving one database family out (DB1_B, DB2_B, pyfnprint, each
with the transformed sets made from its prints) and reported on the family left out; a set on which any
setting was chosen says so (``tuned_on``).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from bio_fingerprint.bench_report import ci, clean, pct, write_report


@dataclass(frozen=True)
class DevSet:
    name: str
    source: str  # DB1_B, DB2_B or pyfnprint
    kind: str | None  # None: the real prints; otherwise an engine.devsets kind
    tuned_on: bool
    note: str
    seed: int = 1


_LEGACY = "the matcher's tolerances, seeds and score were developed on this set (before leave-one-out)"
# The cylinder fusion (MCC weight and floor, no weight floor for pairs whose neighbourhoods disagree) was
# chosen among 12 variants by leave-one-family-out: the fold holding a family out chose on the other two.
_FOLD = {
    "DB1_B": "the fold holding DB1_B out chose the same fusion with DIST_TOL 14 (DB1_B-tiny all-pairs EER 6.78 % "
             "there against 5.72 % as shipped); what ships is the choice of the other two folds",
    "DB2_B": "chosen with DB2_B and its transformed sets held out (the shipped setting)",
    "pyfnprint": "chosen with pyfnprint and its transformed sets held out (the shipped setting)",
}
_FLOOR = ("common-area floor 5 chosen on the seed-1 small/tiny sets (DB2_B + pyfnprint: 5 and 7 tie, "
          "DB1_B's broke the tie)")
# bench-threshold (bio_fingerprint/bench_threshold.py) chose LEADER's detection threshold (engine/enhance.py)
# and the matcher's weight of less certain minutiae (engine/matcher.py) on the small/tiny sets of seeds 1, 3
# and 4 with the full and distorted sets, leaving one family out; seeds 2, 5 and 6 are its hold-out.
_THRESHOLD = ("used by bench-threshold to choose LEADER's detection threshold and the weight of its less certain "
              "minutiae (seed 1/3/4 small/tiny, full and distorted sets; leave one family out)")
TUNING_SEEDS = (1, 3, 4)
HOLDOUT_SEEDS = (2, 5, 6)
DEV_SETS = [DevSet("DB1_B", "DB1_B", None, True, f"{_LEGACY}; cylinder fusion: {_FOLD['DB1_B']}; {_THRESHOLD}"),
            DevSet("DB2_B", "DB2_B", None, True, f"{_LEGACY}; cylinder fusion: {_FOLD['DB2_B']}; {_THRESHOLD}"),
            DevSet("pyfnprint", "pyfnprint", None, True,
                   f"cylinder fusion: {_FOLD['pyfnprint']}; its impostor scores feed the score-to-FMR table; "
                   f"{_THRESHOLD}")]
for _src in ("DB1_B", "DB2_B", "pyfnprint"):
    _derived = "made from prints the legacy tolerances were developed on; " if _src != "pyfnprint" else ""
    for _kind in ("small", "tiny", "distorted"):
        _floor = _kind != "distorted"  # the common-area floor (matcher.MIN_OVERLAP) was chosen on these
        DEV_SETS.append(DevSet(f"{_src}-{_kind}", _src, _kind, True,
                               f"{_derived}cylinder fusion: {_FOLD[_src]}; {_THRESHOLD}"
                               + (f"; {_FLOOR}" if _floor else "")))
# the same transforms with other seeds: 3 and 4 tuned the LEADER threshold, 2, 5 and 6 were never used for a
# choice
for _src in ("DB1_B", "DB2_B", "pyfnprint"):
    for _seed in (2, 3, 4, 5, 6):
        for _kind in ("small", "tiny"):
            if _seed in TUNING_SEEDS:
                DEV_SETS.append(DevSet(f"{_src}-{_kind}-seed{_seed}", _src, _kind, True, _THRESHOLD, _seed))
            else:
                DEV_SETS.append(DevSet(f"{_src}-{_kind}-seed{_seed}", _src, _kind, False,
                                       "hold-out: never used for a choice" + (
                                           " (its results at the floors of 10 and 3 were seen before the floor "
                                           "of 5 was chosen; 3 was ruled out by bench-decisions)" if _seed == 2 else ""),
                                       _seed))


def gray(path: Path) -> np.ndarray:
    from bio_shared.images import decode_image

    return decode_image(path.read_bytes(), mode="gray", max_bytes=1 << 30).pixels


def extract_rows(rows: list[tuple[Path, str]], preset: str = "classic", extractor: str = "leader",
                 leader_threshold: float | None = None) -> dict[str, Any]:
    from bio_fingerprint.engine.enhance import LEADER_THRESHOLD, EnhanceMethods
    from bio_fingerprint.engine.pipeline import process

    threshold = LEADER_THRESHOLD if leader_threshold is None else leader_threshold

    methods = EnhanceMethods.preset(preset)
    # the template path: LEADER minutiae and the quality score need no enhanced ridge image (as /verify and
    # /identify probes); the classic extractor needs it and computes it regardless
    ridges = extractor == "classic"
    process(gray(rows[0][0]), None, methods, 500, extractor, ridges, threshold)  # warm-up (imports, compilation)
    templates, fields, times, cpu, qualities = [], [], [], [], []
    for path, _ in rows:
        img = gray(path)
        t, c = time.perf_counter(), time.process_time()
        r = process(img, None, methods, 500, extractor, ridges, threshold)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        templates.append(r.minutiae)
        fields.append(r.orientation)
        qualities.append(r.quality.score)
    return {"rows": rows, "templates": templates, "fields": fields, "times": times, "cpu_times": cpu,
            "qualities": qualities}


def cached_extract(rows: list[tuple[Path, str]], preset: str, extractor: str, cache: Path | None,
                   leader_threshold: float | None = None) -> dict[str, Any]:
    """extract_rows, kept in cache (npz) when given: matcher experiments then take seconds. The cache file's
    name gets the template algorithm version, so a changed extractor never reads old templates."""
    from bio_fingerprint.engine.template import ALGORITHM_VERSION

    if cache:
        cache = cache.with_name(f"{cache.stem}_v{ALGORITHM_VERSION}{cache.suffix}")
    if cache and cache.is_file():
        st = np.load(cache)
        return {"rows": rows, "templates": [st[f"t{i}"] for i in range(len(rows))],
                "fields": [st[f"f{i}"] for i in range(len(rows))], "times": list(st["times"]),
                "qualities": list(st["qualities"])}
    ex = extract_rows(rows, preset, extractor, leader_threshold)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, times=np.asarray(ex["times"]), qualities=np.asarray(ex["qualities"]),
                 **{f"t{i}": t for i, t in enumerate(ex["templates"])}, **{f"f{i}": f for i, f in enumerate(ex["fields"])})
    return ex


def evaluate_templates(ex: dict[str, Any]) -> dict[str, Any]:
    """FVC protocol and all cross-finger pairs on extracted templates, with the comparison speed."""
    from bio_fingerprint.engine import matcher
    from bio_fingerprint.engine.evaluation import evaluate_scores, fvc_pairs

    packed = matcher.pack(ex["templates"], fields=ex["fields"])
    fingers = [f for _, f in ex["rows"]]
    matcher.score_pairs(packed, [(0, 1)])  # compilation / cache load outside the timing
    count = [0]
    elapsed = [0.0, 0.0]

    def compare(pairs: list[tuple[int, int]]) -> np.ndarray:
        t, c = time.perf_counter(), time.process_time()
        out = matcher.score_pairs(packed, pairs)
        elapsed[0] += time.perf_counter() - t
        elapsed[1] += time.process_time() - c
        count[0] += len(pairs)
        return out

    res = evaluate_scores(len(fingers), fingers, compare)
    # the same comparisons one Python call each (as a /verify request makes one), for the call overhead
    prepared = [matcher.prepare(t, field=f) for t, f in zip(ex["templates"], ex["fields"], strict=True)]
    pairs = fvc_pairs(fingers)["impostor_all"]
    t = time.perf_counter()
    for a, b in pairs:
        matcher.match_raw(*prepared[a], *prepared[b])
    res["comparisons_per_s_python_calls"] = len(pairs) / (time.perf_counter() - t)
    res["extraction_ms"] = {"p50": 1000 * statistics.median(ex["times"]), "mean": 1000 * statistics.mean(ex["times"])}
    if ex.get("cpu_times"):  # CPU time of the extracting process: one core's cost, also on a shared machine
        res["extraction_ms"]["p50_cpu"] = 1000 * statistics.median(ex["cpu_times"])
    res["comparisons_per_s"] = count[0] / elapsed[0]
    # per second of CPU time the matcher thread got: the rate of one core, also on a shared machine
    res["comparisons_per_cpu_s"] = count[0] / max(elapsed[1], 1e-9)
    res["minutiae_mean"] = float(np.mean([len(x) for x in ex["templates"]]))
    if min(ex["qualities"], default=-1) >= 0:  # caches written without quality scores hold -1
        res["quality_mean"] = float(np.mean(ex["qualities"]))
    res["templates"] = ex["templates"]
    res["fields"] = ex["fields"]
    return res


def evaluate_rows(rows: list[tuple[Path, str]], preset: str = "classic", extractor: str = "leader",
                  cache: Path | None = None) -> dict[str, Any]:
    return evaluate_templates(cached_extract(rows, preset, extractor, cache))


def nbis_rows(rows: list[tuple[Path, str]]) -> dict[str, Any] | None:
    try:
        import nbis  # type: ignore[import-not-found]  # optional, not installed by default
    except ImportError:
        return None
    from bio_fingerprint.engine.evaluation import evaluate_scores

    ext = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(min_quality=0.0, get_center=False,
                                                             check_fingerprint=False, compute_nfiq2=False, ppi=500.0))
    mins, times = [], []
    for path, _ in rows:
        data = path.read_bytes()
        t = time.perf_counter()
        mins.append(ext.extract_minutiae(data))
        times.append(time.perf_counter() - t)
    count = [0]

    def compare(pairs: list[tuple[int, int]]) -> np.ndarray:
        count[0] += len(pairs)
        return np.array([float(mins[a].compare(mins[b])) for a, b in pairs])

    t = time.perf_counter()
    res = evaluate_scores(len(mins), [f for _, f in rows], compare)
    res["comparisons_per_s"] = count[0] / (time.perf_counter() - t)
    res["extraction_ms"] = {"p50": 1000 * statistics.median(times)}
    return res


def source_rows(base: Path, source: str) -> list[tuple[Path, str]]:
    from bio_fingerprint.engine.evaluation import read_truth

    if source == "pyfnprint":
        return read_truth(base / "pyfnprint")
    return [(p, f) for p, f in read_truth(base / "fvc2002") if p.parent.name == source]


def set_folder(base: Path, work: Path, s: DevSet) -> Path:
    """The folder of a development set (a transformed set is written once)."""
    from bio_fingerprint.engine.devsets import write_set

    if s.kind is None:
        return base / "pyfnprint" if s.source == "pyfnprint" else base / "fvc2002" / s.source
    folder = work / s.name
    if not (folder / "truth.csv").is_file():
        write_set(source_rows(base, s.source), folder, s.kind, seed=s.seed)
    return folder


def _set_rows(base: Path, work: Path, s: DevSet) -> tuple[list[tuple[Path, str]], str]:
    from bio_fingerprint.engine.evaluation import read_truth

    folder = set_folder(base, work, s)
    if s.kind is None and s.source != "pyfnprint":
        # FVC2002's truth.csv covers both databases: the DB's own rows, evaluated as one set
        return source_rows(base, s.source), f"bio-fingerprint bench --sets {s.name} (FVC2002 truth.csv, {s.source} rows)"
    cmd = f"bio-fingerprint evaluate {folder} --json {s.name}.json"
    if s.kind:
        cmd = f"bio-fingerprint devset {s.source} {folder} --kind {s.kind} --seed {s.seed} && " + cmd
    return read_truth(folder), cmd


def _print_line(name: str, label: str, res: dict[str, Any]) -> None:
    f, a = res["fvc"], res["all_pairs"]
    speed = f"; {res['comparisons_per_s']:.0f} comparisons/s" if "comparisons_per_s" in res else ""
    print(f"{name} {label}: EER {pct(f['eer'])}{ci(f)} FMR100 {pct(f['fmr100'])} FMR1000 {pct(f['fmr1000'])} "
          f"(all impostors: EER {pct(a['eer'])}{ci(a)}, FMR1000 {pct(a['fmr1000'])}); extraction p50 "
          f"{res['extraction_ms']['p50']:.0f} ms{speed}", flush=True)


def bench(args: Any, data_dir: Path) -> None:
    from bio_fingerprint.engine.evaluation import det_svg, rates
    from bio_shared.inference import configure_torch

    configure_torch()
    base = data_dir / "fingerprints"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    cache = Path(args.cache) if args.cache else None
    wanted = set(args.sets.split(",")) if args.sets else None
    report: dict[str, Any] = {"sets": {}, "environment": "2 shared CPU cores, other engineers' jobs running "
                              "(timings are noisy); matcher and extraction single-threaded"}
    all_templates: list[np.ndarray] = []
    all_fields: list[np.ndarray] = []
    full: dict[str, tuple[list[tuple[Path, str]], list[np.ndarray]]] = {}  # per source: rows, templates
    extractors = [e for e in args.extractors.split(",") if e]
    for s in DEV_SETS:
        if wanted and s.name not in wanted:
            continue
        if not (base / ("pyfnprint" if s.source == "pyfnprint" else "fvc2002")).is_dir():
            print(f"skip {s.name}: data missing under {base}")
            continue
        rows, cmd = _set_rows(base, work, s)
        entry: dict[str, Any] = {"tuned_on": s.tuned_on, "note": s.note, "command": cmd,
                                 "derived_from": s.source if s.kind else None, "kind": s.kind}
        curves = {}
        for extractor in extractors if s.kind is None else extractors[:1]:
            res = evaluate_rows(rows, args.enhancement, extractor, cache / f"{s.name}_{extractor}.npz" if cache else None)
            templates, fields = res.pop("templates"), res.pop("fields")
            if extractor == extractors[0] and s.kind is None:
                full[s.source] = (rows, templates)
                if s.source != "pyfnprint":
                    all_templates += templates
                    all_fields += fields
            scores = res.pop("scores")
            curves[f"ours, {extractor}"] = rates(scores["genuine"], scores["impostor_all"])[1:]
            entry[f"ours_{extractor}"] = res
            _print_line(s.name, f"ours ({extractor} minutiae, tuned_on={s.tuned_on})", res)
            if extractor == "leader" and s.kind is None:
                entry["without_fields"] = without_fields(templates, fields, [f for _, f in rows])
            if extractor == extractors[0] and s.kind in ("small", "tiny") and s.source in full:
                entry["common_area"] = common_area(full[s.source], set_folder(base, work, s), scores)
        nb = nbis_rows(rows) if not args.no_nbis and s.kind is None else None
        if nb is not None:
            nbs = nb.pop("scores")
            curves["NBIS mindtct+bozorth3"] = rates(nbs["genuine"], nbs["impostor_all"])[1:]
            _print_line(s.name, "NBIS", nb)
        entry["nbis"] = nb
        svg = out.with_name(f"{out.name}_det_{s.name}.svg")
        svg.write_text(det_svg(curves, f"DET {s.name} (all cross-finger impostors)"))
        entry["det_plot"] = svg.name
        report["sets"][s.name] = entry
    if all_templates:
        report["identification"] = identification_speed(all_templates, all_fields, args.gallery)
    write_report(out, report)


def without_fields(templates: list[np.ndarray], fields: list[np.ndarray], fingers: list[str]) -> dict[str, Any]:
    """Impostor rates of a full set at the shipped table's thresholds, with the orientation fields and
    without them (a record imported from another vendor: the matcher's prior factor): the table is fitted
    with fields, and a comparison without one must not pass more impostors than asked."""
    from bio_fingerprint.engine import matcher
    from bio_fingerprint.engine.evaluation import fvc_pairs
    from bio_fingerprint.service.calibration import threshold_for

    pairs = fvc_pairs(fingers)["impostor_all"]
    with_f = matcher.score_pairs(matcher.pack(templates, fields=fields), pairs)
    bare = matcher.score_pairs(matcher.pack(templates), pairs)
    out: dict[str, Any] = {"impostor_pairs": len(pairs), "rates": []}
    for rate in (0.01, 0.001):
        t = threshold_for(rate)
        out["rates"].append({"fmr": rate, "threshold": t, "with_fields": float(np.mean(with_f >= t)),
                             "without_fields": float(np.mean(bare >= t))})
    print("  impostors over the shipped thresholds with / without orientation fields: " + "; ".join(
        f"FMR {r['fmr']:g}: {r['with_fields']:.4f} / {r['without_fields']:.4f}" for r in out["rates"]), flush=True)
    return out


def common_area(source: tuple[list[tuple[Path, str]], list[np.ndarray]], folder: Path,
                scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """The set's genuine pairs whose crops share under common_area.LOW_FRACTION of a window (bio_fingerprint/
    common_area.py): the FNMR no minutiae matcher can go under."""
    from bio_fingerprint import common_area as ca

    out = ca.summary(ca.common_fractions(*source, folder), scores["genuine"], scores["impostor_all"])
    where = out["all_pairs_eer_where_shared"]
    print(f"  {out['under_low_fraction']} of {out['genuine_pairs']} genuine pairs share under "
          f"{100 * ca.LOW_FRACTION:.0f} % of a window (FNMR floor {pct(out['fnmr_floor'])}); all-pairs EER over "
          f"the others {pct(where) if where is not None else '-'}", flush=True)
    return out


def identification_speed(templates: list[np.ndarray], fields: list[np.ndarray], size: int) -> dict[str, Any]:
    """1:N over a synthetic gallery made from real templates (rotated, moved, jittered, thinned), each with
    its source's orientation field (not moved with it: the comparison's cost is that of real fields)."""
    from bio_fingerprint.engine import matcher

    rng = np.random.default_rng(0)
    synth, synth_fields = [], []
    for k in range(size):
        synth_fields.append(fields[k % len(fields)])
        m = templates[k % len(templates)].copy()
        m = m[rng.random(len(m)) > 0.15]
        a = rng.uniform(-np.pi, np.pi)
        c, s = np.cos(a), np.sin(a)
        xy = m[:, :2] - m[:, :2].mean(0)
        m[:, 0] = c * xy[:, 0] - s * xy[:, 1] + 250 + rng.normal(0, 2, len(m))
        m[:, 1] = s * xy[:, 0] + c * xy[:, 1] + 250 + rng.normal(0, 2, len(m))
        m[:, 2] = (m[:, 2] + a) % (2 * np.pi)
        synth.append(m)
    t = time.perf_counter()
    gallery = matcher.Gallery(list(range(len(synth))), synth, synth_fields)
    build_s = time.perf_counter() - t
    times = []
    for probe, field in zip(templates[:5], fields[:5], strict=True):
        t = time.perf_counter()
        gallery.scores(probe, field)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"1:N over {len(synth)} templates: {med:.2f} s per search ({len(synth) / med:.0f} comparisons/s)")
    return {"gallery": len(synth), "search_s_median": med, "gallery_build_s": build_s,
            "comparisons_per_s": len(synth) / med}


def checked_rows(folder: Path) -> list[tuple[Path, str]]:
    """The rows of folder's truth.csv, every image readable; otherwise SystemExit (status 2) naming the folder
    or up to 10 of the images that cannot be used and why, before any extraction starts (decoding every
    image here costs about 1 ms each, against ~200 ms of extraction, so a bad file late in a large set does
    not end a run of minutes)."""
    import sys

    from bio_fingerprint.engine.evaluation import read_truth
    from bio_shared.errors import BioError

    def refuse(message: str) -> NoReturn:
        print(f"bio-fingerprint evaluate: {message}", file=sys.stderr)
        raise SystemExit(2)

    if not (folder / "truth.csv").is_file():
        refuse(f"{folder} has no truth.csv (columns image,finger_id)")
    rows = read_truth(folder)
    if not rows:
        refuse(f"{folder / 'truth.csv'} lists no image with a finger_id")
    bad = []
    for path, _ in rows:
        try:
            gray(path)
        except (OSError, ValueError, BioError) as exc:  # missing or unreadable file, not an image, too large
            bad.append(f"{path}: {exc}")
    if bad:
        refuse(f"{len(bad)} of {len(rows)} images cannot be used:\n  " + "\n  ".join(bad[:10])
               + ("\n  ..." if len(bad) > 10 else ""))
    return rows


def evaluate(args: Any) -> None:
    from bio_fingerprint.engine.evaluation import det_svg, rates

    res = evaluate_rows(checked_rows(Path(args.directory)), args.enhancement, args.extractor)
    scores = res.pop("scores")
    res.pop("templates")
    res.pop("fields")
    print(json.dumps(clean(res), indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(clean(res), indent=2))
    if args.det:
        Path(args.det).write_text(det_svg({"all impostors": rates(scores["genuine"], scores["impostor_all"])[1:]},
                                          f"DET {args.directory}"))


def devset(args: Any, data_dir: Path) -> None:
    """A transformed development set from DB1_B, DB2_B, pyfnprint or any folder with truth.csv."""
    from bio_fingerprint.engine.devsets import write_set
    from bio_fingerprint.engine.evaluation import read_truth

    base = data_dir / "fingerprints"
    rows = source_rows(base, args.source) if args.source in ("DB1_B", "DB2_B", "pyfnprint") \
        else read_truth(Path(args.source))
    write_set(rows, Path(args.out), args.kind, args.seed)
    print(f"wrote {len(rows)} {args.kind} prints and truth.csv to {args.out}")
