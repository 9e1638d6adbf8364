"""The learned risk scorer: a calibrated probability that a text is harmful, in microseconds.

A linear model over hashed features of the normalized text:

- character 1-3 grams (what a word list would hold, and what no word list holds), and
- syllable 1-2 grams of its toneless pinyin (``moderation.phonetic``), so that a homophone
  (煞笔 for 傻逼) lands on the same features as the word it stands for.

Each distinct feature counts once (binary) and the vector has unit length, so the margin is
``bias + sum(weights of the buckets) / sqrt(number of buckets)``; the probability is that
margin through a sigmoid fitted on held-out folds at training (Platt scaling), so a score of
0.7 means about 70% of such texts were harmful in data like the training data.

Features are hashed into ``2**bits`` buckets by a fixed 64-bit hash of the characters and of
the syllables' spellings (not of their codes), so a model file means the same in every
process and every release that keeps ``LAYOUT``. One pass in C (``_scan.hashed_ngrams``)
finds the buckets and sums their weights; ``reference_ngrams`` is the same in Python.

A model file: a header line naming the format, then a JSON line (layout, bits, bias,
calibration, category, version, what it was trained on and the digest of that data, the
digest of the weights), then the weights as zlib-compressed little-endian float32. Training
lives in ``moderation.train`` (scikit-learn, an optional extra); serving needs none of it.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import zlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, cast

from moderation import _scan
from moderation.domain import Category, Evidence
from moderation.errors import ScorerError
from moderation.normalize import Normalized
from moderation.phonetic import Phonetics

MAGIC = b"moderation-scorer 1\n"
#: What the features are; a model file made for another layout is refused at load.
LAYOUT = "char1-3+syllable1-2/fnv1a64-fmix64/binary-l2"
MIN_BITS, MAX_BITS = 10, 24
#: Buckets of the category heads: the low bits of the same hashes (a few categories need far
#: fewer features than harmful-or-not).
HEAD_BITS = 16
#: Most features a piece of evidence names.
EVIDENCE_LIMIT = 3

_MASK64 = (1 << 64) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_PINYIN_SEED = _FNV_OFFSET ^ 0x9E3779B97F4A7C15
_CHAR_GRAMS = 3
_SYLLABLE_GRAMS = 2


def _mix(h: int, x: int) -> int:
    return ((h ^ x) * _FNV_PRIME) & _MASK64


def _finish(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    return h ^ (h >> 33)


def syllable_hash(syllable: str) -> int:
    """The 64-bit hash of a syllable's spelling (FNV-1a over its UTF-8 bytes, finished)."""
    h = _FNV_OFFSET
    for byte in syllable.encode("utf-8"):
        h = _mix(h, byte)
    return _finish(h)


class Featurizer:
    """Turns a normalized text into its feature buckets; built once per process."""

    def __init__(self, phonetics: Phonetics, bits: int) -> None:
        if not MIN_BITS <= bits <= MAX_BITS:
            raise ValueError(f"bits must be {MIN_BITS}..{MAX_BITS}, not {bits}")
        self.bits = bits
        self._phonetics = phonetics
        self._first_code, syllables = phonetics.syllable_codes
        self._syllables = syllables
        hashes = array("Q", (syllable_hash(s) for s in syllables))
        if sys.byteorder != "little":  # _scan reads native 8-byte words
            raise ScorerError("the scorer's hashed features are defined on little-endian hosts")
        self._hashes = hashes

    def _ngrams(
        self, text: str, bits: int, weights: array[float] | None, top: int
    ) -> list[int] | tuple[float, int] | list[tuple[float, int, int]]:
        return _scan.hashed_ngrams(
            text,
            self._phonetics.syllables(text),
            self._hashes,
            self._first_code,
            bits,
            weights,
            top,
        )

    def buckets(self, text: str) -> list[int]:
        """The distinct buckets of ``text`` (a normalized text), in first-seen order."""
        return cast("list[int]", self._ngrams(text, self.bits, None, 0))

    def weighed(
        self, text: str, weights: array[float], bits: int | None = None
    ) -> tuple[float, int]:
        """The sum of the weights of ``text``'s distinct buckets, and how many there are
        (``bits``: bucket by the low bits of the same hashes, as the category heads do)."""
        found = self._ngrams(text, self.bits if bits is None else bits, weights, 0)
        return cast("tuple[float, int]", found)

    def strongest(self, text: str, weights: array[float], top: int) -> list[tuple[float, int, int]]:
        """The ``top`` distinct buckets of ``text`` with the largest positive weights, as
        (weight, start, end) of the first n-gram that met each, strongest first."""
        found = self._ngrams(text, self.bits, weights, top)
        return cast("list[tuple[float, int, int]]", found)

    def reference_ngrams(self, text: str) -> list[tuple[int, int, int]]:
        """Every n-gram of ``text`` as (bucket, start, end), in the order ``buckets`` meets
        them (the reference for the C pass, and the spans behind evidence)."""
        codes = self._phonetics.syllables(text)
        first, count = self._first_code, len(self._syllables)
        mask = (1 << self.bits) - 1
        out = []
        for i in range(len(text)):
            h = _FNV_OFFSET
            for k in range(min(_CHAR_GRAMS, len(text) - i)):
                h = _mix(h, ord(text[i + k]))
                out.append((_finish(h) & mask, i, i + k + 1))
            h = _PINYIN_SEED
            for k in range(min(_SYLLABLE_GRAMS, len(text) - i)):
                code = ord(codes[i + k]) - first
                if not 0 <= code < count:
                    break
                h = _mix(h, self._hashes[code])
                out.append((_finish(h) & mask, i, i + k + 1))
        return out

    def reference_buckets(self, text: str) -> list[int]:
        """``buckets`` in Python."""
        return list(dict.fromkeys(bucket for bucket, _, _ in self.reference_ngrams(text)))

    def reference_strongest(
        self, text: str, weights: array[float], top: int
    ) -> list[tuple[float, int, int]]:
        """``strongest`` in Python."""
        first: dict[int, tuple[float, int, int]] = {}
        for bucket, start, end in self.reference_ngrams(text):
            if bucket not in first:
                first[bucket] = (weights[bucket], start, end)
        ranked = [item for item in first.values() if item[0] > 0]
        ranked.sort(key=lambda item: -item[0])  # stable: ties keep the earlier
        return ranked[:top]


def folded(buckets: list[int], bits: int) -> list[int]:
    """Buckets of ``2**bits`` from wider ones: the low bits of the same hashes, each once."""
    mask = (1 << bits) - 1
    return list(dict.fromkeys(bucket & mask for bucket in buckets))


def parse_kind(kind: str) -> tuple[Category, str]:
    """``"HATE/regional"`` or ``"HATE"`` as a category and a subcategory; ``ValueError`` for
    a name that is not a category."""
    name, _, subcategory = kind.partition("/")
    try:
        return Category[name.strip().upper()], subcategory.strip()
    except KeyError:
        known = ", ".join(c.name for c in Category)
        raise ValueError(f"{kind!r} names no category; use one of {known}") from None


@dataclass(frozen=True, slots=True)
class Head:
    """One category head: its margin says how much a harmful text looks like this kind."""

    category: Category
    subcategory: str
    bias: float
    weights: array[float] = field(repr=False)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True, slots=True)
class ScorerModel:
    """A trained model: weights and what the answer needs to say about them."""

    name: str
    version: str
    bits: int
    bias: float
    calibration: tuple[float, float]
    """(a, b): the probability is ``sigmoid(a * margin + b)``."""
    category: Category
    """The category a score-only label carries (what the training data's harm is)."""
    weights: array[float] = field(repr=False)
    training: Mapping[str, Any] = field(default_factory=dict)
    """What it was trained on: sources, rows, positives, and ``digest`` of the rows."""
    heads: tuple[Head, ...] = ()
    """Category heads (none, or two and more): which kind of harm a high score is."""
    head_bits: int = HEAD_BITS

    @property
    def training_digest(self) -> str:
        """The digest of the training rows (``sha256:<hex>``), or empty when unknown."""
        return str(self.training.get("digest", ""))

    def to_bytes(self) -> bytes:
        """The model file's content (the same bytes for the same model: reproducible)."""
        weights = array("f", self.weights)
        for head in self.heads:
            weights.extend(head.weights)
        if sys.byteorder != "little":
            weights.byteswap()
        raw = weights.tobytes()
        header = {
            "layout": LAYOUT,
            "name": self.name,
            "version": self.version,
            "bits": self.bits,
            "bias": self.bias,
            "calibration": list(self.calibration),
            "category": self.category.name,
            "training": dict(self.training),
            "heads": [
                {"category": h.category.name, "subcategory": h.subcategory, "bias": h.bias}
                for h in self.heads
            ],
            "head_bits": self.head_bits,
            "weights_sha256": hashlib.sha256(raw).hexdigest(),
        }
        line = json.dumps(header, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return MAGIC + line + b"\n" + zlib.compress(raw, 9)

    def save(self, path: Path) -> None:
        """Write the model file (to a temporary name first, so a reader never sees half)."""
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(self.to_bytes())
        partial.replace(path)

    @classmethod
    def from_bytes(cls, data: bytes, source: str) -> ScorerModel:
        """Parse a model file; ``ScorerError`` naming ``source`` and the problem otherwise."""
        if not data.startswith(MAGIC):
            raise ScorerError(
                f"{source}: not a scorer model file (it must begin {MAGIC.strip()!r}); "
                "make one with `moderation train`"
            )
        line, newline, body = data[len(MAGIC) :].partition(b"\n")
        try:
            header = json.loads(line.decode("utf-8")) if newline else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            header = None
        if not isinstance(header, dict):
            raise ScorerError(
                f"{source}: the header line is not a JSON object; the file is corrupt"
            )
        layout = header.get("layout")
        if layout != LAYOUT:
            raise ScorerError(
                f"{source}: made for feature layout {layout!r}, but this release computes "
                f"{LAYOUT!r}; retrain it with `moderation train`"
            )
        try:
            bits = int(header["bits"])
            bias = float(header["bias"])
            a, b = (float(x) for x in header["calibration"])
            category = Category[header["category"]]
            name, version = str(header["name"]), str(header["version"])
            digest = str(header["weights_sha256"])
            training = header.get("training", {})
            head_bits = int(header.get("head_bits", HEAD_BITS))
            heads = [
                (Category[h["category"]], str(h["subcategory"]), float(h["bias"]))
                for h in header.get("heads", [])
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ScorerError(f"{source}: header: missing or invalid {exc}") from exc
        if not MIN_BITS <= bits <= MAX_BITS:
            raise ScorerError(f"{source}: bits is {bits}; it must be {MIN_BITS}..{MAX_BITS}")
        if len(heads) == 1 or (heads and not MIN_BITS <= head_bits <= bits):
            raise ScorerError(
                f"{source}: head_bits is {head_bits} with {len(heads)} heads; it must be "
                f"{MIN_BITS}..bits, with no head or two and more"
            )
        if not all(math.isfinite(x) for x in (bias, a, b)) or not isinstance(training, dict):
            raise ScorerError(f"{source}: header: bias and calibration must be finite numbers")
        try:
            raw = zlib.decompress(body)
        except zlib.error as exc:
            raise ScorerError(f"{source}: the weights do not decompress ({exc}); corrupt") from exc
        if (
            len(raw) != (4 << bits) + len(heads) * (4 << head_bits)
            or hashlib.sha256(raw).hexdigest() != digest
        ):
            raise ScorerError(
                f"{source}: the weights do not match the header (size or sha256); corrupt"
            )
        everything = array("f")
        everything.frombytes(raw)
        if sys.byteorder != "little":
            everything.byteswap()
        if not all(math.isfinite(w) for w in everything):
            raise ScorerError(f"{source}: the weights hold a value that is not finite; corrupt")
        main, size = 1 << bits, 1 << head_bits
        return cls(
            name,
            version,
            bits,
            bias,
            (a, b),
            category,
            everything[:main],
            training,
            tuple(
                Head(kind, sub, head_bias, everything[main + i * size : main + (i + 1) * size])
                for i, (kind, sub, head_bias) in enumerate(heads)
            ),
            head_bits,
        )

    @classmethod
    def load(cls, path: Path | Traversable) -> ScorerModel:
        """Read a model file; ``ScorerError`` when it is missing, corrupt or for another
        layout."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ScorerError(
                f"{path}: cannot read the scorer model ({exc.strerror or exc}); "
                "set MODERATION_SCORER_PATH to a file made by `moderation train`"
            ) from exc
        return cls.from_bytes(data, str(path))


def embedded_model() -> Traversable:
    """The model shipped in the package."""
    return resources.files("moderation") / "data" / "scorer" / "default.scorer"


class Scorer:
    """Scores normalized texts with one model; immutable, safe to share between threads."""

    def __init__(self, model: ScorerModel, phonetics: Phonetics) -> None:
        self.model = model
        self.featurizer = Featurizer(phonetics, model.bits)
        self._weights = model.weights
        self._bias = model.bias
        self._a, self._b = model.calibration
        self.category = model.category
        #: The model's name and version, as every answer states it.
        self.version = f"{model.name}-{model.version}"
        self.training_digest = model.training_digest

    def margin(self, text: str) -> float:
        """The linear model's margin for a normalized text (before calibration)."""
        total, count = self.featurizer.weighed(text, self._weights)
        return self._bias + (total / math.sqrt(count) if count else 0.0)

    def score(self, text: str) -> float:
        """The calibrated probability that a normalized text is harmful."""
        return _sigmoid(self._a * self.margin(text) + self._b)

    def kind(self, text: str) -> tuple[Category, str]:
        """Which kind of harm a normalized text looks like: the category head with the largest
        margin, or the model's category (subcategory ``learned``) when it has no heads."""
        model = self.model
        if not model.heads:
            return self.category, "learned"
        best, best_margin = model.heads[0], -math.inf
        for head in model.heads:
            total, count = self.featurizer.weighed(text, head.weights, model.head_bits)
            margin = head.bias + (total / math.sqrt(count) if count else 0.0)
            if margin > best_margin:
                best, best_margin = head, margin
        return best.category, best.subcategory

    def evidence(self, normalized: Normalized) -> tuple[Evidence, ...]:
        """The spans that raised the score most, as evidence in the caller's text.

        The ``2 * EVIDENCE_LIMIT`` n-grams of largest positive weight, overlapping ones joined
        into one span (骗 and 骗子 make 骗子), the ``EVIDENCE_LIMIT`` spans with the strongest
        n-gram kept, in text order.
        """
        top = self.featurizer.strongest(normalized.text, self._weights, 2 * EVIDENCE_LIMIT)
        joined: list[list[float]] = []  # [start, end, strongest weight]
        for weight, start, end in sorted(top, key=lambda item: item[1]):
            if joined and start < joined[-1][1]:
                last = joined[-1]
                last[1] = max(last[1], end)
                last[2] = max(last[2], weight)
            else:
                joined.append([start, end, weight])
        kept = sorted(joined, key=lambda span: -span[2])[:EVIDENCE_LIMIT]
        out = []
        for i, j, _ in sorted(kept):
            start, end = normalized.span(int(i), int(j))
            out.append(
                Evidence(
                    start=start,
                    end=end,
                    text=normalized.original[start:end],
                    term=normalized.text[int(i) : int(j)],
                    variant=normalized.variant(int(i), int(j)),
                )
            )
        return tuple(out)
