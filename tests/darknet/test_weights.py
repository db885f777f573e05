"""``.weights`` IO: byte-identical round trips, precise errors, and ``partial`` equal to darknet's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge_image.contract.errors import UserError
from tests.darknet.conftest import NAMES3
from training_scripts.__main__ import main
from training_scripts.darknet.cfg import parse_cfg, render_cfg
from training_scripts.darknet.profiles import generate_cfg
from training_scripts.darknet.weights import (
    DarknetWeights,
    expected_size,
    parse_weights,
    partial,
    random_weights,
    read_weights,
    write_weights,
)


def darknet_partial(darknet: Path, cfg: Path, weights: Path, out: Path, n: int) -> bytes:
    subprocess.run(
        [str(darknet), "partial", str(cfg), str(weights), str(out), str(n)],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return out.read_bytes()


def test_round_trip_is_byte_identical(smoke_cfg, tmp_path):
    _, sections = smoke_cfg
    weights = random_weights(sections, seed=5, seen=2**40 + 7)  # needs the int64 seen
    path = write_weights(tmp_path / "a.weights", weights)
    data = path.read_bytes()
    filters, channels = [4, 8, 16, 32, 64, 128, 256, 256], [3, 4, 8, 16, 32, 64, 128, 256]
    floats = sum(4 * f + f * c * 9 for f, c in zip(filters, channels, strict=True)) + 40 + 40 * 256
    assert len(data) == expected_size(sections) == 20 + 4 * floats
    back = read_weights(path, sections)
    assert (back.major, back.minor, back.revision, back.seen) == (0, 2, 0, 2**40 + 7)
    assert [layer.layer for layer in back.layers] == [0, 2, 4, 6, 8, 10, 12, 13, 14]
    assert all(a.equals(b) for a, b in zip(weights.layers, back.layers, strict=True))
    assert back.layers[0].weights.shape == (4, 3, 3, 3)
    assert back.layers[-1].scales is None and back.layers[-1].biases.shape == (40,)
    write_weights(tmp_path / "b.weights", back)
    assert (tmp_path / "b.weights").read_bytes() == data


def test_sixteen_byte_header_of_version_0_1(smoke_cfg, tmp_path):
    _, sections = smoke_cfg
    old = random_weights(sections, seed=1)
    old.minor, old.seen = 1, 123456  # the original yolov2-tiny-voc.weights layout: int32 seen
    data = old.to_bytes()
    assert len(data) == expected_size(sections, 0, 1) == expected_size(sections) - 4
    back = parse_weights(data, sections)
    assert (back.major, back.minor, back.seen, back.header_size) == (0, 1, 123456, 16)
    assert back.to_bytes() == data


def test_reads_and_rewrites_darknet_written_file(darknet_bin, smoke_cfg, tmp_path):
    path, sections = smoke_cfg
    ours = write_weights(tmp_path / "ours.weights", random_weights(sections, seed=2))
    theirs = darknet_partial(darknet_bin, path, ours, tmp_path / "dk.weights", 100)  # all layers
    assert theirs == ours.read_bytes()
    write_weights(tmp_path / "again.weights", read_weights(tmp_path / "dk.weights", sections))
    assert (tmp_path / "again.weights").read_bytes() == theirs


@pytest.mark.parametrize("n_layers", [0, 1, 7, 13, 14])
def test_partial_equals_darknet_partial(darknet_bin, smoke_cfg, tmp_path, n_layers):
    path, sections = smoke_cfg
    source = random_weights(sections, seed=3)
    source.minor, source.seen = 1, 4321  # darknet resets seen and writes a 0.2.0 header
    src = write_weights(tmp_path / "src.weights", source)
    theirs = darknet_partial(darknet_bin, path, src, tmp_path / "dk.weights", n_layers)
    ours = partial(read_weights(src, sections), n_layers)
    assert ours.to_bytes() == theirs
    assert (ours.major, ours.minor, ours.seen) == (0, 2, 0)


def test_darknet_accepts_our_partial(darknet_bin, smoke_cfg, tmp_path):
    """darknet loads our 13-layer file into a 13-layer cfg and writes back the same bytes."""
    cfg, sections = smoke_cfg
    full = write_weights(tmp_path / "full.weights", random_weights(sections, seed=4))
    out = tmp_path / "p13.weights"
    args = ["partial", "--cfg", str(cfg), "--weights", str(full), "--out", str(out), "--layers", "13"]
    assert main(args) == 0
    head_cfg = tmp_path / "head.cfg"
    head_cfg.write_text(render_cfg(sections[:14]))  # [net] + layers 0..12
    assert read_weights(out, parse_cfg(head_cfg)).layers[-1].layer == 12
    assert darknet_partial(darknet_bin, head_cfg, out, tmp_path / "back.weights", 100) == out.read_bytes()


def test_partial_cli_error(tmp_path, smoke_cfg, capsys):
    code = main(
        [
            "partial",
            "--cfg",
            str(smoke_cfg[0]),
            "--weights",
            str(tmp_path / "none.weights"),
            "--out",
            str(tmp_path / "o.weights"),
            "--layers",
            "3",
        ]
    )
    assert code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'none.weights'}: weights file not found\n"
    assert not (tmp_path / "o.weights").exists()


def _layer_offsets(weights: DarknetWeights) -> list[tuple[int, int]]:
    """(layer index, byte offset where the layer starts)."""
    offset, result = weights.header_size, []
    for layer in weights.layers:
        result.append((layer.layer, offset))
        offset += len(layer.to_bytes())
    return result


def test_truncated_weights_name_the_layer(smoke_cfg):
    path, sections = smoke_cfg
    data = random_weights(sections, seed=6).to_bytes()
    offsets = _layer_offsets(random_weights(sections, seed=6))
    layer, start = offsets[4]
    cut = data[: start + 10]
    with pytest.raises(UserError) as err:
        parse_weights(cut, sections, source="w.weights")
    assert str(err.value).startswith(
        f"w.weights: expected {len(data)} bytes for {path}, got {len(cut)}: truncated in layer {layer} "
    )
    assert layer == 8
    with pytest.raises(UserError, match="truncated in layer 0"):
        parse_weights(data[:21], sections)
    with pytest.raises(UserError, match="10 bytes is too short for a darknet weights header"):
        parse_weights(data[:10], sections)


def test_oversized_weights_report_trailing_bytes(smoke_cfg):
    path, sections = smoke_cfg
    data = random_weights(sections, seed=7).to_bytes()
    with pytest.raises(UserError) as err:
        parse_weights(data + b"\0" * 12, sections, source="w.weights")
    assert str(err.value).startswith(
        f"w.weights: expected {len(data)} bytes for {path}, got {len(data) + 12}: "
    )
    assert "12 trailing bytes" in str(err.value)


def test_header_mismatch(smoke_cfg):
    _, sections = smoke_cfg
    weights = random_weights(sections, seed=8)
    data = bytearray(weights.to_bytes())
    data[4:8] = np.array([1], "<i4").tobytes()  # header claims 0.1 (int32 seen): 4 bytes left over
    with pytest.raises(UserError, match=r"4 trailing bytes \(header says version 0\.1, 16-byte header"):
        parse_weights(bytes(data), sections)
    data[0:4] = np.array([-3], "<i4").tobytes()
    with pytest.raises(UserError, match=r"header says version -3\.1\.0: not a darknet weights file"):
        parse_weights(bytes(data), sections)


def test_weights_for_another_cfg(smoke_cfg, tmp_path):
    _, sections = smoke_cfg
    other = parse_cfg(generate_cfg([*NAMES3, "star"], "cpu-smoke", max_batches=10))  # 45 filters, not 40
    path = write_weights(tmp_path / "four.weights", random_weights(other, seed=9))
    with pytest.raises(
        UserError, match=r"trailing bytes \(header says version 0\.2, 20-byte header; weights for another cfg"
    ):
        read_weights(path, sections)
    with pytest.raises(UserError, match="truncated in layer 14"):
        read_weights(write_weights(tmp_path / "three.weights", random_weights(sections, seed=9)), other)
