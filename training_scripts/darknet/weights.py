"""Darknet ``.weights`` files: read, write, truncate (``partial``) and make random ones.

Layout (pjreddie src/parser.c ``load_weights_upto`` / ``save_weights_upto``), little endian:

* header: int32 ``major``, ``minor``, ``revision``; then ``seen`` (images trained on) as
  int64 (``size_t``) when ``major*10 + minor >= 2`` and both are below 1000, else int32.
  darknet writes 0.2.0 (20-byte header); the original yolov2-tiny-voc.weights is 0.1.0 (16).
* then, for each ``[convolutional]`` layer in cfg order: ``filters`` biases; when
  ``batch_normalize=1`` ``filters`` scales, rolling means and rolling variances; then
  ``filters * channels * size * size`` weights in ``(filters, channels, size, size)`` order.
  Maxpool and region layers store nothing.

>>> from training_scripts.darknet.cfg import parse_cfg
>>> cfg = parse_cfg("[net]\\nwidth=8\\nheight=8\\nchannels=3\\n[convolutional]\\nbatch_normalize=1\\n"
...                 "filters=4\\nsize=3\\npad=1\\nactivation=leaky\\n")
>>> w = random_weights(cfg, seed=0)
>>> len(weights_to_bytes(w)) == expected_size(cfg) == 20 + 4 * (4 * 4 + 4 * 3 * 3 * 3)
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edge_image.contract.atomic import write_bytes
from edge_image.contract.errors import UserError
from training_scripts.darknet.cfg import LayerInfo, Section, describe

_F32 = np.dtype("<f4")


@dataclass
class ConvWeights:
    """Parameters of one convolutional layer, float32, as darknet stores them.

    ``weights`` has shape ``(filters, channels, size, size)``. ``scales``,
    ``rolling_mean`` and ``rolling_variance`` are ``None`` without batch normalization.
    """

    layer: int
    biases: np.ndarray
    weights: np.ndarray
    scales: np.ndarray | None = None
    rolling_mean: np.ndarray | None = None
    rolling_variance: np.ndarray | None = None

    @property
    def batch_normalize(self) -> bool:
        """Whether the layer has batch-norm parameters."""
        return self.scales is not None

    def to_bytes(self) -> bytes:
        """The layer's bytes in file order."""
        parts = [self.biases]
        if self.scales is not None:
            assert self.rolling_mean is not None and self.rolling_variance is not None
            parts += [self.scales, self.rolling_mean, self.rolling_variance]
        parts.append(self.weights)
        return b"".join(np.ascontiguousarray(p, dtype=_F32).tobytes() for p in parts)

    def equals(self, other: ConvWeights) -> bool:
        """Bit-for-bit equality of every array (NaN-safe)."""
        return self.layer == other.layer and self.to_bytes() == other.to_bytes()


@dataclass
class DarknetWeights:
    """A parsed ``.weights`` file: header fields and one :class:`ConvWeights` per conv layer."""

    major: int = 0
    minor: int = 2
    revision: int = 0
    seen: int = 0
    layers: list[ConvWeights] = field(default_factory=list)

    @property
    def header_size(self) -> int:
        """16 or 20 bytes, from the version (darknet's rule)."""
        return header_size(self.major, self.minor)

    def to_bytes(self) -> bytes:
        """The whole file."""
        return header_bytes(self.major, self.minor, self.revision, self.seen) + b"".join(
            layer.to_bytes() for layer in self.layers
        )

    def by_layer(self) -> dict[int, ConvWeights]:
        """Conv parameters keyed by darknet layer index."""
        return {layer.layer: layer for layer in self.layers}


def seen_is_int64(major: int, minor: int) -> bool:
    """darknet's rule: ``seen`` is a ``size_t`` when ``major*10+minor >= 2`` and both ``< 1000``."""
    return major * 10 + minor >= 2 and major < 1000 and minor < 1000


def header_size(major: int, minor: int) -> int:
    """Header bytes for a version: 20 (int64 seen) or 16 (int32 seen).

    >>> header_size(0, 2), header_size(0, 1)
    (20, 16)
    """
    return 20 if seen_is_int64(major, minor) else 16


def header_bytes(major: int, minor: int, revision: int, seen: int) -> bytes:
    """Encode a header."""
    head = np.array([major, minor, revision], dtype="<i4").tobytes()
    return head + np.array([seen], dtype="<i8" if seen_is_int64(major, minor) else "<i4").tobytes()


def conv_layers(sections: Sequence[Section]) -> list[LayerInfo]:
    """The conv layers of a cfg, the ones a ``.weights`` file holds."""
    return [info for info in describe(sections) if info.kind == "convolutional"]


def payload_size(sections: Sequence[Section]) -> int:
    """Bytes after the header for ``sections``."""
    return 4 * sum(info.n_params for info in conv_layers(sections))


def expected_size(sections: Sequence[Section], major: int = 0, minor: int = 2) -> int:
    """Total file size for ``sections`` with a header of the given version."""
    return header_size(major, minor) + payload_size(sections)


def _cfg_name(sections: Sequence[Section]) -> str:
    return sections[0].source if sections else "<cfg>"


def parse_weights(data: bytes, sections: Sequence[Section], *, source: str = "<weights>") -> DarknetWeights:
    """Parse ``.weights`` bytes against a cfg. See :func:`read_weights` for the errors."""
    cfg = _cfg_name(sections)
    if len(data) < 16:
        raise UserError(
            f"{source}: {len(data)} bytes is too short for a darknet weights header (16 or 20 bytes)"
        )
    major, minor, revision = (int(v) for v in np.frombuffer(data, "<i4", 3))
    size = header_size(major, minor)
    if major < 0 or minor < 0 or revision < 0 or major > 100000 or minor > 100000:
        raise UserError(
            f"{source}: header says version {major}.{minor}.{revision}: not a darknet weights file"
        )
    if len(data) < size:
        raise UserError(
            f"{source}: header says version {major}.{minor} ({size}-byte header), file has {len(data)} bytes"
        )
    seen = int(np.frombuffer(data, "<i8" if size == 20 else "<i4", 1, 12)[0])
    if seen < 0:
        raise UserError(f"{source}: header says seen={seen}: not a darknet weights file")
    convs = conv_layers(sections)
    expected = size + 4 * sum(info.n_params for info in convs)
    hint = f"header says version {major}.{minor}, {size}-byte header; weights for another cfg?"
    if len(data) > expected:
        raise UserError(
            f"{source}: expected {expected} bytes for {cfg}, got {len(data)}: "
            f"{len(data) - expected} trailing bytes ({hint})"
        )
    offset = size
    layers: list[ConvWeights] = []
    for info in convs:
        if offset + 4 * info.n_params > len(data):
            raise UserError(
                f"{source}: expected {expected} bytes for {cfg}, got {len(data)}: "
                f"truncated in layer {info.index} ({hint})"
            )
        n = info.filters

        def take(count: int) -> np.ndarray:
            nonlocal offset
            arr = np.frombuffer(data, _F32, count, offset).copy()
            offset += 4 * count
            return arr

        biases = take(n)
        scales = mean = var = None
        if info.batch_normalize:
            scales, mean, var = take(n), take(n), take(n)
        weights = take(n * info.in_c * info.size * info.size).reshape(n, info.in_c, info.size, info.size)
        layers.append(ConvWeights(info.index, biases, weights, scales, mean, var))
    return DarknetWeights(major, minor, revision, seen, layers)


def read_weights(path: str | os.PathLike[str], sections: Sequence[Section]) -> DarknetWeights:
    """Read a ``.weights`` file for the cfg ``sections``.

    Errors (:class:`UserError`, one line):
    ``expected N bytes for CFG, got M: truncated in layer k`` (file too short),
    ``... trailing bytes`` (file too long: usually weights of another cfg),
    ``header says ...`` (a header that cannot be darknet's).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: weights file not found") from None
    return parse_weights(data, sections, source=str(path))


def weights_to_bytes(weights: DarknetWeights) -> bytes:
    """Serialize (the inverse of :func:`parse_weights`, byte for byte)."""
    return weights.to_bytes()


def write_weights(path: str | os.PathLike[str], weights: DarknetWeights) -> Path:
    """Write ``weights`` atomically to ``path``; returns the path."""
    return write_bytes(path, weights.to_bytes())


def partial(weights: DarknetWeights, n_layers: int) -> DarknetWeights:
    """Keep the conv layers with darknet index ``< n_layers``: ``darknet partial cfg w out N``.

    darknet loads the network with ``clear=1`` (``seen`` reset to 0) and saves with its own
    writer, so the result always has header 0.2.0 with an int64 ``seen`` of 0, whatever the
    input's version. ``n_layers`` counts all layers (maxpools too), like darknet's cutoff.
    """
    if n_layers < 0:
        raise UserError(f"partial: layer count must be >= 0, got {n_layers}")
    kept = [replace(layer) for layer in weights.layers if layer.layer < n_layers]
    return DarknetWeights(major=0, minor=2, revision=0, seen=0, layers=kept)


def random_weights(sections: Sequence[Section], seed: int = 0, *, seen: int = 0) -> DarknetWeights:
    """Random, darknet-compatible weights for ``sections`` (header 0.2.0).

    Conv weights are ``N(0, 1) * sqrt(2 / (size*size*channels))`` like darknet's
    ``make_convolutional_layer``; biases small normal; batch-norm scales near 1, rolling
    means near 0 and rolling variances near 1 (darknet itself starts variances at 0,
    which makes an untrained network's test-mode output explode).
    """
    rng = np.random.default_rng(seed)
    layers: list[ConvWeights] = []
    for info in conv_layers(sections):
        n = info.filters
        fan_in = info.in_c * info.size * info.size
        weights = (rng.standard_normal((n, info.in_c, info.size, info.size)) * np.sqrt(2.0 / fan_in)).astype(
            _F32
        )
        biases = (rng.standard_normal(n) * 0.1).astype(_F32)
        scales = mean = var = None
        if info.batch_normalize:
            scales = (1.0 + 0.1 * rng.standard_normal(n)).astype(_F32)
            mean = (0.1 * rng.standard_normal(n)).astype(_F32)
            var = rng.uniform(0.5, 1.5, n).astype(_F32)
        layers.append(ConvWeights(info.index, biases, weights, scales, mean, var))
    return DarknetWeights(0, 2, 0, seen, layers)
