"""Train a scorer model file: ``moderation train``. Needs the ``train`` extra (scikit-learn).

Rows come from labelled datasets (``moderation.datasets``) and from the model's past verdicts
(``--from-verdicts``: the verdict cache keeps the hashed features of each item it judged,
never its text). Every row becomes the features the server computes (``Featurizer``), so the
served margin is exactly ``LogisticRegression.decision_function`` of the trained model (up to
float32 weights), which a test holds.

The recipe: binary features scaled to unit length; L2-regularised logistic regression
(liblinear, deterministic); calibration by Platt scaling on out-of-fold margins of a seeded
stratified k-fold, whose AUC is reported as the held-out estimate. The same rows, order and
options give the same file, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moderation.datasets import labelled_rows
from moderation.domain import Category
from moderation.errors import ConfigError, DatasetError
from moderation.escalation import VERDICT_LABELS
from moderation.normalize import Normalizer
from moderation.scorer import HEAD_BITS, LAYOUT, Featurizer, Head, ScorerModel, folded, parse_kind

DEFAULT_BITS = 20
DEFAULT_C = 8.0
FOLDS = 5


@dataclass(frozen=True, slots=True)
class Rows:
    """Training rows as feature buckets, with where they came from."""

    buckets: list[list[int]]
    labels: list[int]
    kinds: list[str]
    """Per row, the kind of harm (``CATEGORY`` or ``CATEGORY/subcategory``) or empty."""
    sources: list[dict[str, Any]]
    digest: str
    """``sha256:<hex>`` of every row (source name, label, text or buckets), in order."""


class RowReader:
    """Gathers rows from datasets and verdict caches into one training set."""

    def __init__(self, normalizer: Normalizer, featurizer: Featurizer) -> None:
        self._normalize = normalizer
        self._featurizer = featurizer
        self._buckets: list[list[int]] = []
        self._labels: list[int] = []
        self._kinds: list[str] = []
        self._sources: list[dict[str, Any]] = []
        self._digest = hashlib.sha256()

    def dataset(
        self,
        path: Path,
        *,
        text_col: str | None = None,
        label_col: str | None = None,
        kind_col: str | None = None,
        kind_map: Mapping[str, str] | None = None,
    ) -> None:
        """Add every row of a labelled dataset that has text. ``kind_col`` names a column of
        the kind of harm of harmful rows: a category name, ``CATEGORY/subcategory``, or a value
        ``kind_map`` translates into one (values it does not hold are left out)."""
        added = positives = 0
        self._digest.update(f"dataset\0{path.name}\0".encode())
        for row in labelled_rows(path, text_col=text_col, label_col=label_col, kind_col=kind_col):
            text = self._normalize(row.text).text
            if not text.strip():
                continue
            kind = _kind(row.kind, kind_map, path) if row.harmful and row.kind else ""
            self._add(self._featurizer.buckets(text), int(row.harmful), kind)
            self._digest.update(
                f"{int(row.harmful)}\0{kind}\0{row.text}\0".encode("utf-8", "replace")
            )
            added += 1
            positives += row.harmful
        if not added:
            raise DatasetError(f"{path}: no rows with text")
        self._sources.append({"name": path.name, "rows": added, "positives": positives})

    def verdicts(self, path: Path) -> None:
        """Add the model's verdicts from a verdict cache: ``unsafe`` is harmful, ``safe`` is
        benign, ``controversial`` is left out. Rows stored under another feature layout or
        bucket count are skipped (and counted)."""
        if not path.is_file():
            raise DatasetError(f"{path}: no such file")
        layout = f"{LAYOUT}/{self._featurizer.bits}"
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                rows = db.execute(
                    "SELECT verdict, features, features_layout FROM verdicts"
                    " WHERE features IS NOT NULL ORDER BY key"
                ).fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            raise DatasetError(f"{path}: not a verdict cache ({exc})") from exc
        added = positives = other_layout = undecided = 0
        self._digest.update(f"verdicts\0{path.name}\0".encode())
        for raw_verdict, features, row_layout in rows:
            if row_layout != layout:
                other_layout += 1
                continue
            label = VERDICT_LABELS.get(_verdict_of(raw_verdict))
            if label is None:
                undecided += 1
                continue
            buckets = list(memoryview(features).cast("I"))
            self._add(buckets, label, "")
            self._digest.update(bytes([label]) + bytes(features))
            added += 1
            positives += label
        if not added:
            raise DatasetError(
                f"{path}: no usable verdicts ({other_layout} under another feature layout, "
                f"{undecided} controversial); the cache keeps features only for items judged "
                "since this release"
            )
        self._sources.append(
            {
                "name": path.name,
                "rows": added,
                "positives": positives,
                "skipped_other_layout": other_layout,
                "skipped_controversial": undecided,
            }
        )

    def _add(self, buckets: list[int], label: int, kind: str) -> None:
        self._buckets.append(buckets)
        self._labels.append(label)
        self._kinds.append(kind)

    def rows(self) -> Rows:
        """Everything added so far."""
        return Rows(
            self._buckets,
            self._labels,
            self._kinds,
            list(self._sources),
            "sha256:" + self._digest.hexdigest(),
        )


def _kind(value: str, kind_map: Mapping[str, str] | None, path: Path) -> str:
    """A row's kind of harm as ``CATEGORY[/subcategory]``, or empty when the map leaves it out."""
    if kind_map is not None:
        value = kind_map.get(value, "")
        if not value:
            return ""
    try:
        category, subcategory = parse_kind(value)
    except ValueError as exc:
        raise DatasetError(
            f"{path}: category column: {exc} (or map it with --category-map)"
        ) from exc
    return f"{category.name}/{subcategory}" if subcategory else category.name


def _verdict_of(raw: str) -> str:
    try:
        value = json.loads(raw).get("verdict", "")
    except (ValueError, AttributeError):
        return ""
    return str(value)


def _sklearn() -> Any:
    try:
        import numpy as np
        import scipy.sparse as sparse
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold
    except ImportError as exc:
        raise ConfigError("training needs scikit-learn: pip install 'moderation[train]'") from exc
    return np, sparse, LogisticRegression, roc_auc_score, StratifiedKFold


def matrix(buckets: Sequence[Sequence[int]], bits: int) -> Any:
    """The rows as the scorer sees them: a CSR matrix of unit-length binary rows."""
    np, sparse, *_ = _sklearn()
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for row in buckets:
        indices.extend(row)
        data.extend([1.0 / math.sqrt(len(row))] * len(row) if row else [])
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.asarray(data, dtype=np.float64), np.asarray(indices), np.asarray(indptr)),
        shape=(len(buckets), 1 << bits),
    )


def _fit(x: Any, y: Any, c: float) -> Any:
    _, _, logistic_regression, _, _ = _sklearn()
    model = logistic_regression(C=c, solver="liblinear", max_iter=5000, random_state=0)
    model.fit(x, y)
    return model


@dataclass(frozen=True, slots=True)
class Trained:
    """A trained model and what training measured."""

    model: ScorerModel
    held_out_auc: float
    """AUC of the out-of-fold margins (rows scored by a model that did not see them)."""
    rows: int
    positives: int
    estimator: Any
    """The fitted ``LogisticRegression`` the weights come from."""


def train(
    rows: Rows,
    *,
    bits: int = DEFAULT_BITS,
    c: float = DEFAULT_C,
    seed: int = 0,
    name: str = "scorer",
    version: str = "1",
    category: Category = Category.HATE,
) -> Trained:
    """Fit the weights on every row and the calibration on out-of-fold margins."""
    np, _, logistic_regression, roc_auc_score, stratified_k_fold = _sklearn()
    y = np.asarray(rows.labels)
    positives = int(y.sum())
    if positives < FOLDS or len(y) - positives < FOLDS:
        raise DatasetError(
            f"training needs at least {FOLDS} harmful and {FOLDS} benign rows; "
            f"got {positives} and {len(y) - positives}"
        )
    x = matrix(rows.buckets, bits)
    margins = np.zeros(len(y))
    for fit_rows, held_rows in stratified_k_fold(FOLDS, shuffle=True, random_state=seed).split(
        x, y
    ):
        margins[held_rows] = _fit(x[fit_rows], y[fit_rows], c).decision_function(x[held_rows])
    platt = logistic_regression(C=1e6, solver="lbfgs", max_iter=1000)
    platt.fit(margins.reshape(-1, 1), y)
    calibration = (float(platt.coef_[0][0]), float(platt.intercept_[0]))
    final = _fit(x, y, c)
    head_bits = min(HEAD_BITS, bits)
    heads, category = _heads(rows, c, category, head_bits)
    weights = array("f", final.coef_[0].astype(np.float32).tobytes())
    held_out_auc = round(float(roc_auc_score(y, margins)), 4)
    training = {
        "digest": rows.digest,
        "rows": len(y),
        "positives": positives,
        "sources": rows.sources,
        "c": c,
        "folds": FOLDS,
        "seed": seed,
        "held_out_auc": held_out_auc,
    }
    model = ScorerModel(
        name=name,
        version=version,
        bits=bits,
        bias=float(final.intercept_[0]),
        calibration=calibration,
        category=category,
        weights=weights,
        training=training,
        heads=heads,
        head_bits=head_bits,
    )
    return Trained(model, held_out_auc, len(y), positives, final)


def _heads(
    rows: Rows, c: float, category: Category, head_bits: int
) -> tuple[tuple[Head, ...], Category]:
    """Category heads from the harmful rows with a kind: a multinomial logistic regression
    over the same features bucketed by ``head_bits``. One kind only: no heads, and that
    kind's category becomes the model's."""
    np, _, logistic_regression, _, _ = _sklearn()
    chosen = [i for i, kind in enumerate(rows.kinds) if kind and rows.labels[i]]
    kinds = sorted({rows.kinds[i] for i in chosen})
    if len(kinds) < 2:
        return (), parse_kind(kinds[0])[0] if kinds else category
    x = matrix([folded(rows.buckets[i], head_bits) for i in chosen], head_bits)
    y = [rows.kinds[i] for i in chosen]
    model = logistic_regression(C=c, solver="lbfgs", max_iter=5000)
    model.fit(x, y)
    coef, intercept = model.coef_, model.intercept_
    if len(kinds) == 2:  # one margin for the second kind; the first's is zero
        coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
        intercept = [0.0, intercept[0]]
    heads = []
    for kind, weights, bias in zip(model.classes_, coef, intercept, strict=True):
        head_category, subcategory = parse_kind(str(kind))
        heads.append(
            Head(
                head_category,
                subcategory,
                float(bias),
                array("f", weights.astype(np.float32).tobytes()),
            )
        )
    return tuple(heads), category


def read_rows(
    normalizer: Normalizer,
    featurizer: Featurizer,
    datasets: Iterable[Path],
    verdict_caches: Iterable[Path] = (),
    *,
    text_col: str | None = None,
    label_col: str | None = None,
    kind_col: str | None = None,
    kind_map: Mapping[str, str] | None = None,
) -> Rows:
    """Every row of the datasets, then of the verdict caches, in the order given."""
    reader = RowReader(normalizer, featurizer)
    for path in datasets:
        reader.dataset(
            path, text_col=text_col, label_col=label_col, kind_col=kind_col, kind_map=kind_map
        )
    for path in verdict_caches:
        reader.verdicts(path)
    return reader.rows()
