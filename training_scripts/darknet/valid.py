"""darknet ``detector valid`` results: read them, produce the same rows from our decoder, compare.

``darknet detector valid DATA CFG WEIGHTS`` (pjreddie examples/detector.c
``validate_detector``) runs every image of the ``valid=`` list at thresh .005, NMS .45,
and writes ``<results>/comp4_det_test_<class name>.txt`` with one line per (box, class):
``image_id prob xmin ymin xmax ymax``: ``image_id`` is the file name without directory
and extension, coordinates are pixels of the original image with darknet's +1 offset and
clipped to ``[1, width]`` / ``[1, height]`` (``print_detector_detections``), printed
with ``%f`` (6 decimals).

:func:`detections_to_rows` turns our :class:`~edge_image.contract.decode.Detections` into the
same rows, and :func:`compare_rows` matches two row sets within a tolerance.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_image.contract.decode import Detections
from edge_image.contract.errors import UserError

VALID_THRESH = 0.005
VALID_NMS = 0.45


@dataclass(frozen=True)
class ValidRow:
    """One detection as darknet's ``detector valid`` prints it."""

    image_id: str
    class_id: int
    prob: float
    xmin: float
    ymin: float
    xmax: float
    ymax: float


def read_valid_results(results_dir: str | os.PathLike[str], names: Sequence[str]) -> list[ValidRow]:
    """Parse ``comp4_det_test_<name>.txt`` for every class name (a missing file is an error)."""
    rows: list[ValidRow] = []
    for class_id, name in enumerate(names):
        path = Path(results_dir) / f"comp4_det_test_{name}.txt"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{path}: darknet valid output not found") from None
        for number, line in enumerate(text.splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise UserError(
                    f"{path}:{number}: expected 'image_id prob xmin ymin xmax ymax', got {line!r}"
                )
            try:
                values = [float(v) for v in parts[1:]]
            except ValueError:
                raise UserError(f"{path}:{number}: non-numeric field in {line!r}") from None
            rows.append(ValidRow(parts[0], class_id, *values))
    return rows


def detections_to_rows(image_id: str, detections: Detections, width: int, height: int) -> list[ValidRow]:
    """Our detections as darknet's valid rows for an image of ``width`` x ``height`` pixels.

    >>> d = Detections(np.array([[0.1, 0.2, 0.5, 1.1]]), np.array([0.5]), np.array([2]))
    >>> detections_to_rows("a", d, 100, 50)
    [ValidRow(image_id='a', class_id=2, prob=0.5, xmin=11.0, ymin=11.0, xmax=51.0, ymax=50.0)]
    """
    rows = []
    boxes = detections.boxes.astype(np.float64)
    for (x1, y1, x2, y2), prob, cls in zip(boxes, detections.scores, detections.class_ids, strict=True):
        xmin = max(float(x1) * width + 1, 1.0)
        ymin = max(float(y1) * height + 1, 1.0)
        xmax = min(float(x2) * width + 1, float(width))
        ymax = min(float(y2) * height + 1, float(height))
        rows.append(ValidRow(image_id, int(cls), float(prob), xmin, ymin, xmax, ymax))
    return rows


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`compare_rows`: matched pairs and what is left on each side."""

    matched: int
    only_ours: list[ValidRow]
    only_theirs: list[ValidRow]
    max_prob_diff: float
    max_coord_diff: float

    @property
    def ok(self) -> bool:
        """Every row found a partner."""
        return not self.only_ours and not self.only_theirs

    def summary(self) -> str:
        """One line for logs and assertion messages."""
        return (
            f"{self.matched} matched, {len(self.only_ours)} only ours, "
            f"{len(self.only_theirs)} only darknet's; "
            f"max |dprob| {self.max_prob_diff:.2e}, max |dcoord| {self.max_coord_diff:.2e} px"
        )


def compare_rows(
    ours: Iterable[ValidRow], theirs: Iterable[ValidRow], *, prob_tol: float, coord_tol: float
) -> Comparison:
    """Match rows one to one per (image, class): greedy on the closest partner within tolerance.

    A pair matches when ``|prob| <= prob_tol`` and every coordinate differs by at most
    ``coord_tol`` pixels.
    """
    groups: dict[tuple[str, int], tuple[list[ValidRow], list[ValidRow]]] = {}
    for row in ours:
        groups.setdefault((row.image_id, row.class_id), ([], []))[0].append(row)
    for row in theirs:
        groups.setdefault((row.image_id, row.class_id), ([], []))[1].append(row)
    matched = 0
    only_ours: list[ValidRow] = []
    only_theirs: list[ValidRow] = []
    max_prob = max_coord = 0.0
    for mine, other in groups.values():
        a = np.array([[r.prob, r.xmin, r.ymin, r.xmax, r.ymax] for r in mine]).reshape(-1, 5)
        b = np.array([[r.prob, r.xmin, r.ymin, r.xmax, r.ymax] for r in other]).reshape(-1, 5)
        dprob = np.abs(a[:, None, 0] - b[None, :, 0])
        dcoord = np.abs(a[:, None, 1:] - b[None, :, 1:]).max(axis=2, initial=0.0)
        ok = (dprob <= prob_tol) & (dcoord <= coord_tol)
        cost = np.where(ok, dprob / max(prob_tol, 1e-12) + dcoord / max(coord_tol, 1e-12), np.inf)
        used_a: set[int] = set()
        used_b: set[int] = set()
        for flat in np.argsort(cost, axis=None, kind="stable"):
            i, j = divmod(int(flat), max(b.shape[0], 1))
            if not np.isfinite(cost[i, j]):
                break
            if i in used_a or j in used_b:
                continue
            used_a.add(i)
            used_b.add(j)
            matched += 1
            max_prob = max(max_prob, float(dprob[i, j]))
            max_coord = max(max_coord, float(dcoord[i, j]))
        only_ours += [r for i, r in enumerate(mine) if i not in used_a]
        only_theirs += [r for j, r in enumerate(other) if j not in used_b]
    return Comparison(matched, only_ours, only_theirs, max_prob, max_coord)


# validate_detector starts 4 loader threads on paths[0..3] before checking the list length,
# so a list shorter than 4 reads past its end and silently writes nothing.
_DARKNET_VALID_MIN_IMAGES = 4
_PAD_PREFIX = "__pad_"


def run_darknet_valid(
    darknet: str | os.PathLike[str],
    cfg: str | os.PathLike[str],
    weights: str | os.PathLike[str],
    images: Sequence[str | os.PathLike[str]],
    names: Sequence[str],
    workdir: str | os.PathLike[str],
    *,
    timeout: float = 600.0,
) -> list[ValidRow]:
    """Run ``darknet detector valid`` on ``images`` and return its rows.

    Writes ``valid.txt``, ``obj.names``, ``obj.data`` and ``results/`` under ``workdir``.
    Lists shorter than 4 are padded with links named ``__pad_N`` whose rows are dropped.
    Image file names (without extension) must be unique: they are darknet's image ids.
    Note darknet letterboxes: only images already at the network size are fed unchanged.
    """
    import subprocess

    work = Path(workdir)
    results = work / "results"
    results.mkdir(parents=True, exist_ok=True)
    paths = [Path(p).resolve() for p in images]
    if not paths:
        raise UserError("darknet valid: no images")
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        raise UserError("darknet valid: image file names must be unique (they are darknet's image ids)")
    for i in range(_DARKNET_VALID_MIN_IMAGES - len(paths)):
        pad = work / f"{_PAD_PREFIX}{i}{paths[0].suffix}"
        pad.unlink(missing_ok=True)
        pad.symlink_to(paths[0])
        paths.append(pad)
    (work / "valid.txt").write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
    (work / "obj.names").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    (work / "obj.data").write_text(
        f"classes={len(names)}\nvalid={work.resolve() / 'valid.txt'}\n"
        f"names={work.resolve() / 'obj.names'}\nresults={results.resolve()}\n",
        encoding="utf-8",
    )
    command = [str(darknet), "detector", "valid", str(work / "obj.data"), str(cfg), str(weights)]
    try:
        proc = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise UserError(f"{darknet}: darknet binary not found") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"darknet valid: no result after {timeout:.0f} s") from None
    failed = proc.returncode != 0 or "Cannot load image" in proc.stderr or "Couldn't open" in proc.stderr
    if failed:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise UserError(f"darknet valid failed (exit {proc.returncode}): {last}")
    return [r for r in read_valid_results(results, names) if not r.image_id.startswith(_PAD_PREFIX)]
