"""Darknet ``.cfg`` files: parse, render, and infer layer shapes.

A cfg is a list of ``[section]`` headers, each followed by ``key=value`` lines. Parsing
follows pjreddie darknet ``read_cfg`` (src/parser.c): spaces, tabs and newlines are
removed from every line (so ``anchors = 1, 2`` reads as ``anchors=1,2``), lines starting
with ``#`` or ``;`` are comments, and a value runs from the first ``=`` to the end of the
line. Header aliases (``[conv]``, ``[max]``, ``[network]`` ...) are normalized to one kind.

>>> sections = parse_cfg("[net]\\nwidth=32\\nheight=32\\nchannels=3\\n[convolutional]\\nfilters=8\\n"
...                      "size=3\\nstride=1\\npad=1\\nactivation=leaky\\n")
>>> [s.kind for s in sections]
['net', 'convolutional']
>>> info = describe(sections)[0]
>>> (info.out_c, info.out_h, info.out_w, info.flops)
(8, 32, 32, 442368)
>>> parse_cfg(render_cfg(sections)) == sections
True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge_image.contract.decode import RegionSpec
from edge_image.contract.errors import UserError

# darknet's string_to_layer_type (src/parser.c): header → canonical kind
_ALIASES: dict[str, str] = {
    "net": "net",
    "network": "net",
    "conv": "convolutional",
    "convolutional": "convolutional",
    "deconv": "deconvolutional",
    "deconvolutional": "deconvolutional",
    "max": "maxpool",
    "maxpool": "maxpool",
    "avg": "avgpool",
    "avgpool": "avgpool",
    "conn": "connected",
    "connected": "connected",
    "lrn": "normalization",
    "normalization": "normalization",
    "soft": "softmax",
    "softmax": "softmax",
}
_KNOWN_KINDS = frozenset(_ALIASES.values()) | {
    "shortcut",
    "crop",
    "cost",
    "detection",
    "region",
    "yolo",
    "iseg",
    "local",
    "activation",
    "logistic",
    "l2norm",
    "crnn",
    "gru",
    "lstm",
    "rnn",
    "reorg",
    "dropout",
    "batchnorm",
    "route",
    "upsample",
}
# Layers the shape inference, the weights reader and the forward pass implement.
SUPPORTED_KINDS: tuple[str, ...] = ("convolutional", "maxpool", "region")
ACTIVATIONS: tuple[str, ...] = ("leaky", "linear", "relu", "logistic")


@dataclass
class Section:
    """One ``[kind]`` block: ``options`` in file order, values as darknet sees them.

    ``line`` and ``source`` say where it came from (for error messages); they are not
    part of equality, so a rendered and re-parsed cfg compares equal to the original.
    ``ignored`` lists repeated keys ``(line, key, value)``: darknet uses the first value of
    a key (``option_find``), so later repeats are dropped, as darknet does, and kept here.
    """

    kind: str
    options: dict[str, str] = field(default_factory=dict)
    line: int = field(default=0, compare=False)
    source: str = field(default="<cfg>", compare=False)
    ignored: list[tuple[int, str, str]] = field(default_factory=list, compare=False, repr=False)
    option_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def where(self) -> str:
        """``file:line`` of the section header."""
        return f"{self.source}:{self.line}"

    def where_key(self, key: str) -> str:
        """``file:line`` of option ``key`` (the section header when unknown)."""
        return f"{self.source}:{self.option_lines.get(key, self.line)}"

    def get_str(self, key: str, default: str | None = None) -> str:
        """Option ``key`` as text; ``default`` when absent (a UserError if no default)."""
        if key in self.options:
            return self.options[key]
        if default is None:
            raise UserError(f"{self.where}: [{self.kind}] needs {key}=")
        return default

    def get_int(self, key: str, default: int | None = None) -> int:
        """Option ``key`` as an integer (darknet ``atoi`` semantics are not copied: junk is an error)."""
        if key not in self.options:
            if default is None:
                raise UserError(f"{self.where}: [{self.kind}] needs {key}=")
            return default
        try:
            return int(self.options[key])
        except ValueError:
            raise UserError(
                f"{self.where_key(key)}: [{self.kind}] {key}={self.options[key]!r} is not an integer"
            ) from None

    def get_float(self, key: str, default: float | None = None) -> float:
        """Option ``key`` as a float."""
        if key not in self.options:
            if default is None:
                raise UserError(f"{self.where}: [{self.kind}] needs {key}=")
            return default
        try:
            return float(self.options[key])
        except ValueError:
            raise UserError(
                f"{self.where_key(key)}: [{self.kind}] {key}={self.options[key]!r} is not a number"
            ) from None

    def get_floats(self, key: str) -> tuple[float, ...]:
        """Comma-separated option ``key`` as floats (empty tuple when absent)."""
        text = self.options.get(key, "")
        if not text:
            return ()
        try:
            return tuple(float(v) for v in text.split(",") if v != "")
        except ValueError:
            raise UserError(
                f"{self.where_key(key)}: [{self.kind}] {key}={text!r} is not a list of numbers"
            ) from None


@dataclass(frozen=True)
class LayerInfo:
    """Shape and cost of one darknet layer (index as darknet counts: ``[net]`` excluded).

    ``pad`` is the padding in pixels darknet applies (conv: ``size//2`` when ``pad=1``;
    maxpool: ``padding``, default ``size-1``, split as ``pad//2`` before and the rest after).
    ``flops`` counts multiply and add (darknet's BFLOPs x 1e9); ``n_params`` is the number
    of floats the layer stores in a ``.weights`` file.
    """

    index: int
    kind: str
    in_c: int
    in_h: int
    in_w: int
    out_c: int
    out_h: int
    out_w: int
    filters: int = 0
    size: int = 0
    stride: int = 0
    pad: int = 0
    batch_normalize: bool = False
    activation: str = ""
    flops: int = 0
    n_params: int = 0
    line: int = 0

    def summary(self) -> str:
        """One line like darknet's layer table."""
        if self.kind == "convolutional":
            what = f"conv {self.filters:5d} {self.size} x{self.size} /{self.stride}"
        elif self.kind == "maxpool":
            what = f"max        {self.size} x{self.size} /{self.stride}"
        else:
            what = f"{self.kind:<22}"
        return (
            f"{self.index:3d} {what:<24} {self.in_w:4d} x{self.in_h:4d} x{self.in_c:4d}   ->  "
            f"{self.out_w:4d} x{self.out_h:4d} x{self.out_c:4d}  {self.flops / 1e9:7.3f} BFLOPs"
        )


def _source_name(path_or_text: str | os.PathLike[str]) -> tuple[str, str]:
    """``(name for messages, text)``: a path is read, a string with a newline or ``[`` is the text."""
    if isinstance(path_or_text, os.PathLike) or (
        isinstance(path_or_text, str)
        and "\n" not in path_or_text
        and not path_or_text.lstrip().startswith("[")
    ):
        path = Path(path_or_text)
        try:
            return str(path), path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{path}: cfg file not found") from None
        except OSError as exc:
            raise UserError(f"{path}: cannot read cfg ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise UserError(f"{path}: not a text cfg file ({exc.reason} at byte {exc.start})") from None
    return "<cfg>", str(path_or_text)


def parse_cfg(path_or_text: str | os.PathLike[str], *, source: str | None = None) -> list[Section]:
    """Parse a darknet cfg (a path, or the text itself when it contains a newline).

    Returns the sections in order. Errors are :class:`UserError` ``file:line: ...``:
    an option before the first section, a line without ``=``, an unknown ``[kind]``,
    or no ``[net]`` section first. A repeated key keeps its first value (darknet does
    the same, e.g. ``batch=`` under both "Testing" and "Training" in yolo9000.cfg).
    """
    name, text = _source_name(path_or_text)
    if source is not None:
        name = source
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = "".join(ch for ch in raw if ch not in " \t\r\n")
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise UserError(f"{name}:{number}: malformed section header {raw.strip()!r}")
            header = line[1:-1]  # case-sensitive, like darknet
            kind = _ALIASES.get(header, header)
            if kind not in _KNOWN_KINDS:
                raise UserError(f"{name}:{number}: unknown section [{header}]")
            sections.append(Section(kind=kind, line=number, source=name))
            continue
        if not sections:
            raise UserError(f"{name}:{number}: option {line!r} before the first [section]")
        key, sep, value = line.partition("=")
        if not sep or not key:
            raise UserError(f"{name}:{number}: expected key=value, got {raw.strip()!r}")
        current = sections[-1]
        if key in current.options:  # darknet's option_find returns the first one
            current.ignored.append((number, key, value))
        else:
            current.options[key] = value
            current.option_lines[key] = number
    if not sections:
        raise UserError(f"{name}: no sections in cfg")
    if sections[0].kind != "net":
        raise UserError(f"{sections[0].where}: the first section must be [net], got [{sections[0].kind}]")
    return sections


def render_cfg(sections: Sequence[Section]) -> str:
    """Render sections back to cfg text (one blank line between sections).

    ``parse_cfg(render_cfg(s)) == s`` for every parsed ``s``.
    """
    blocks = []
    for section in sections:
        lines = [f"[{section.kind}]"] + [f"{k}={v}" for k, v in section.options.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def net_section(sections: Sequence[Section]) -> Section:
    """The ``[net]`` section (parse_cfg guarantees it comes first)."""
    if not sections or sections[0].kind != "net":
        raise UserError("cfg: the first section must be [net]")
    return sections[0]


def net_size(sections: Sequence[Section]) -> tuple[int, int]:
    """Network input ``(width, height)`` from ``[net]``."""
    net = net_section(sections)
    width, height = net.get_int("width", 0), net.get_int("height", 0)
    if width <= 0 or height <= 0:
        raise UserError(f"{net.where}: [net] needs positive width= and height=, got {width}x{height}")
    return width, height


def net_channels(sections: Sequence[Section]) -> int:
    """Input channels from ``[net]`` (darknet default 0 is an error here; 3 is usual)."""
    net = net_section(sections)
    channels = net.get_int("channels", 0)
    if channels <= 0:
        raise UserError(f"{net.where}: [net] needs a positive channels=")
    return channels


def layer_sections(sections: Sequence[Section]) -> list[Section]:
    """All sections after ``[net]``: darknet's layers, index 0 first."""
    net_section(sections)
    return list(sections[1:])


def _conv_info(index: int, s: Section, c: int, h: int, w: int) -> LayerInfo:
    filters = s.get_int("filters", 1)
    size = s.get_int("size", 1)
    stride = s.get_int("stride", 1)
    groups = s.get_int("groups", 1)
    padding = size // 2 if s.get_int("pad", 0) else s.get_int("padding", 0)
    activation = s.get_str("activation", "logistic")
    if groups != 1:
        raise UserError(f"{s.where_key('groups')}: grouped convolutions (groups={groups}) are not supported")
    if activation not in ACTIVATIONS:
        raise UserError(
            f"{s.where_key('activation')}: activation={activation} not supported "
            f"(use one of {', '.join(ACTIVATIONS)})"
        )
    for key in ("binary", "xnor", "flipped"):
        if s.get_int(key, 0):
            raise UserError(f"{s.where}: {key}=1 convolutions are not supported")
    if filters < 1 or size < 1 or stride < 1 or padding < 0:
        raise UserError(f"{s.where}: filters, size and stride must be positive")
    out_h = (h + 2 * padding - size) // stride + 1
    out_w = (w + 2 * padding - size) // stride + 1
    if out_h < 1 or out_w < 1:
        raise UserError(f"{s.where}: layer {index} input {w}x{h} is too small for size={size}")
    bn = bool(s.get_int("batch_normalize", 0))
    n_weights = filters * c * size * size
    return LayerInfo(
        index=index,
        kind="convolutional",
        in_c=c,
        in_h=h,
        in_w=w,
        out_c=filters,
        out_h=out_h,
        out_w=out_w,
        filters=filters,
        size=size,
        stride=stride,
        pad=padding,
        batch_normalize=bn,
        activation=activation,
        flops=2 * n_weights * out_h * out_w,
        n_params=filters * (4 if bn else 1) + n_weights,
        line=s.line,
    )


def _maxpool_info(index: int, s: Section, c: int, h: int, w: int) -> LayerInfo:
    stride = s.get_int("stride", 1)
    size = s.get_int("size", stride)
    padding = s.get_int("padding", size - 1)
    if size < 1 or stride < 1 or padding < 0:
        raise UserError(f"{s.where}: maxpool size and stride must be positive")
    out_h = (h + padding - size) // stride + 1
    out_w = (w + padding - size) // stride + 1
    if out_h < 1 or out_w < 1:
        raise UserError(f"{s.where}: layer {index} input {w}x{h} is too small for size={size}")
    return LayerInfo(
        index=index,
        kind="maxpool",
        in_c=c,
        in_h=h,
        in_w=w,
        out_c=c,
        out_h=out_h,
        out_w=out_w,
        size=size,
        stride=stride,
        pad=padding,
        line=s.line,
    )


def _region_info(index: int, s: Section, c: int, h: int, w: int) -> LayerInfo:
    classes = s.get_int("classes", 20)
    num = s.get_int("num", 1)
    coords = s.get_int("coords", 4)
    if coords != 4:
        raise UserError(f"{s.where_key('coords')}: region coords={coords} not supported (only 4)")
    if classes < 1 or num < 1:
        raise UserError(f"{s.where}: region classes and num must be positive")
    expected = num * (classes + coords + 1)
    if c != expected:
        raise UserError(
            f"{s.where}: region layer with classes={classes} num={num} needs {expected} input channels "
            f"(filters=(classes+5)*num in the last [convolutional]), got {c}"
        )
    anchors = s.get_floats("anchors")
    if anchors and len(anchors) != 2 * num:
        raise UserError(
            f"{s.where_key('anchors')}: anchors= has {len(anchors)} numbers, num={num} needs {2 * num}"
        )
    return LayerInfo(
        index=index, kind="region", in_c=c, in_h=h, in_w=w, out_c=c, out_h=h, out_w=w, line=s.line
    )


def describe(sections: Sequence[Section]) -> list[LayerInfo]:
    """Infer every layer's input/output shape, padding and cost, as darknet does.

    Supports ``[convolutional]`` (groups=1), ``[maxpool]`` and ``[region]``: the layers of
    the Tiny-YOLOv2 family. Anything else is a :class:`UserError` naming the section.
    """
    w, h = net_size(sections)
    c = net_channels(sections)
    infos: list[LayerInfo] = []
    builders = {"convolutional": _conv_info, "maxpool": _maxpool_info, "region": _region_info}
    for index, s in enumerate(layer_sections(sections)):
        build = builders.get(s.kind)
        if build is None:
            raise UserError(
                f"{s.where}: layer {index} [{s.kind}] is not supported (only {', '.join(SUPPORTED_KINDS)})"
            )
        info = build(index, s, c, h, w)
        infos.append(info)
        c, h, w = info.out_c, info.out_h, info.out_w
    if not infos:
        raise UserError(f"{sections[0].source}: cfg has no layers after [net]")
    return infos


def total_gflops(infos: Sequence[LayerInfo]) -> float:
    """Sum of the layers' FLOPs in billions (darknet prints the same per layer as BFLOPs)."""
    return sum(i.flops for i in infos) / 1e9


def region_section(sections: Sequence[Section]) -> Section:
    """The last section, which must be ``[region]``."""
    last = sections[-1]
    if last.kind != "region":
        raise UserError(f"{last.where}: the last section must be [region], got [{last.kind}]")
    return last


def region_spec(sections: Sequence[Section]) -> RegionSpec:
    """The decoder's :class:`RegionSpec` (classes, anchors) from the ``[region]`` section."""
    region = region_section(sections)
    classes = region.get_int("classes", 20)
    num = region.get_int("num", 1)
    anchors = region.get_floats("anchors")
    if not anchors:
        raise UserError(f"{region.where}: [region] needs anchors=")
    if len(anchors) != 2 * num:
        raise UserError(
            f"{region.where_key('anchors')}: anchors= has {len(anchors)} numbers, num={num} needs {2 * num}"
        )
    if classes < 1:
        raise UserError(f"{region.where}: [region] classes must be >= 1")
    return RegionSpec(classes=classes, anchors=anchors)


def check_classes(
    sections: Sequence[Section], names: Sequence[str], *, names_source: str = "obj.names"
) -> None:
    """Raise a :class:`UserError` unless the cfg's classes and filters fit ``names``.

    Checks ``[region] classes`` == ``len(names)`` and the last conv's
    ``filters == (classes + 5) * num``.
    """
    region = region_section(sections)
    classes = region.get_int("classes", 20)
    if classes != len(names):
        raise UserError(
            f"{region.where_key('classes')}: [region] classes={classes} "
            f"but {names_source} lists {len(names)} names"
        )
    num = region.get_int("num", 1)
    convs = [s for s in sections if s.kind == "convolutional"]
    if not convs:
        raise UserError(f"{region.where}: no [convolutional] before [region]")
    filters = convs[-1].get_int("filters", 1)
    if filters != (classes + 5) * num:
        raise UserError(
            f"{convs[-1].where_key('filters')}: last [convolutional] filters={filters}, "
            f"but classes={classes} num={num} "
            f"needs (classes+5)*num = {(classes + 5) * num}"
        )
