"""cfg parsing, rendering, shape inference and generation, checked against darknet's own cfg and table."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_image.contract.decode import VOC_TINY_ANCHORS
from edge_image.contract.errors import UserError
from tests.darknet.conftest import NAMES3, write_dataset_dir
from training_scripts.__main__ import main
from training_scripts.darknet.cfg import (
    Section,
    check_classes,
    describe,
    net_size,
    parse_cfg,
    region_spec,
    render_cfg,
    total_gflops,
)
from training_scripts.darknet.profiles import PROFILES, generate_cfg, recommended_max_batches

# darknet's layer table (src/convolutional_layer.c, maxpool_layer.c)
_CONV_ROW = re.compile(
    r"^\s*(\d+) conv\s+(\d+)\s+(\d+) x\s*(\d+) /\s*(\d+)\s+(\d+) x\s*(\d+) x\s*(\d+)\s+->\s+"
    r"(\d+) x\s*(\d+) x\s*(\d+)\s+([\d.]+) BFLOPs"
)
_MAX_ROW = re.compile(
    r"^\s*(\d+) max\s+(\d+) x\s*(\d+) /\s*(\d+)\s+(\d+) x\s*(\d+) x\s*(\d+)\s+->\s+(\d+) x\s*(\d+) x\s*(\d+)"
)


def darknet_table(darknet: Path, cfg: Path) -> list[tuple]:
    """Layer rows darknet prints while parsing ``cfg``.

    ``darknet partial`` parses the cfg (printing the table to stderr) before it opens the
    weights file; a missing weights file then stops it, so nothing large is written.
    """
    proc = subprocess.run(
        [str(darknet), "partial", str(cfg), str(cfg.with_name("absent.weights")), "/dev/null", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Couldn't open file" in proc.stderr, proc.stderr[-500:]
    rows = []
    for line in proc.stderr.splitlines():
        if m := _CONV_ROW.match(line):
            i, f, k, _, s, w, h, c, ow, oh, oc, bf = m.groups()
            rows.append(
                (
                    int(i),
                    "convolutional",
                    int(f),
                    int(k),
                    int(s),
                    (int(c), int(h), int(w)),
                    (int(oc), int(oh), int(ow)),
                    float(bf),
                )
            )
        elif m := _MAX_ROW.match(line):
            i, k, _, s, w, h, c, ow, oh, oc = m.groups()
            rows.append(
                (
                    int(i),
                    "maxpool",
                    0,
                    int(k),
                    int(s),
                    (int(c), int(h), int(w)),
                    (int(oc), int(oh), int(ow)),
                    0.0,
                )
            )
    return rows


def our_table(sections: list[Section]) -> list[tuple]:
    return [
        (
            i.index,
            i.kind,
            i.filters,
            i.size,
            i.stride,
            (i.in_c, i.in_h, i.in_w),
            (i.out_c, i.out_h, i.out_w),
            round(i.flops / 1e9, 3),
        )
        for i in describe(sections)
        if i.kind != "region"
    ]


def test_parses_darknets_yolov2_tiny_voc(voc_cfg):
    _, sections = voc_cfg
    assert [s.kind for s in sections] == ["net"] + ["convolutional", "maxpool"] * 6 + [
        "convolutional"
    ] * 3 + ["region"]
    assert sections[0].options["saturation"] == "1.5"  # "saturation = 1.5": spaces removed like darknet
    assert net_size(sections) == (416, 416)
    spec = region_spec(sections)
    assert spec.classes == 20
    assert spec.anchors == VOC_TINY_ANCHORS
    infos = describe(sections)
    assert (infos[-2].out_c, infos[-2].out_h, infos[-2].out_w) == (125, 13, 13)
    assert (
        infos[11].kind == "maxpool"
        and infos[11].stride == 1
        and (infos[11].out_h, infos[11].out_w) == (13, 13)
    )
    assert total_gflops(infos) == pytest.approx(6.97, abs=0.01)  # darknet's BFLOPs column summed


def test_shapes_and_flops_equal_darknets_table(darknet_bin, voc_cfg, smoke_cfg):
    for path, sections in (voc_cfg, smoke_cfg):
        theirs = darknet_table(darknet_bin, path)
        assert len(theirs) == len(describe(sections)) - 1
        assert our_table(sections) == theirs


def test_round_trip_darknet_and_generated_cfgs(darknet_cfg_dir):
    texts = [(darknet_cfg_dir / "yolov2-tiny-voc.cfg").read_text()]
    texts += [generate_cfg(NAMES3, profile, train_images=5) for profile in PROFILES]
    for text in texts:
        sections = parse_cfg(text)
        rendered = render_cfg(sections)
        assert parse_cfg(rendered) == sections
        assert render_cfg(parse_cfg(rendered)) == rendered


def test_every_cfg_darknet_ships_parses(darknet_cfg_dir):
    paths = sorted(darknet_cfg_dir.glob("*.cfg"))
    assert len(paths) > 30
    for path in paths:
        sections = parse_cfg(path)
        assert parse_cfg(render_cfg(sections)) == sections, path


def test_repeated_key_keeps_first_value_like_darknet():
    sections = parse_cfg("[net]\nbatch=1\nwidth=32\nbatch=64\n")
    assert sections[0].options["batch"] == "1"
    assert sections[0].ignored == [(4, "batch", "64")]


_key = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_value = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.,-=[]#", min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["convolutional", "maxpool", "region", "route"]), st.dictionaries(_key, _value)
        ),
        max_size=5,
    )
)
def test_render_parse_round_trip_property(blocks):
    sections = [Section("net", {"width": "32"})] + [Section(kind, dict(opts)) for kind, opts in blocks]
    assert parse_cfg(render_cfg(sections)) == sections


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("width=3\n[net]\n", "<cfg>:1: option 'width=3' before the first [section]"),
        ("[net]\nwidth\n", "<cfg>:2: expected key=value, got 'width'"),
        ("[net]\n[conv]\n# c\n[bogus]\n", "<cfg>:4: unknown section [bogus]"),
        ("[convolutional]\nsize=3\n", "<cfg>:1: the first section must be [net], got [convolutional]"),
        ("[net]\n[net\n", "<cfg>:2: malformed section header '[net'"),
        ("# only a comment\n", "<cfg>: no sections in cfg"),
    ],
)
def test_parse_errors_name_file_and_line(text, message):
    with pytest.raises(UserError) as err:
        parse_cfg(text)
    assert str(err.value) == message


def test_parse_error_uses_file_name(tmp_path):
    path = tmp_path / "bad.cfg"
    path.write_text("[net]\nwidth=32\nheight=32\nchannels=3\n\n[maxpool]\nstride=2\nsize=two\n")
    with pytest.raises(UserError, match=r"bad\.cfg:8: \[maxpool\] size='two' is not an integer"):
        describe(parse_cfg(path))
    with pytest.raises(UserError, match=r"missing\.cfg: cfg file not found"):
        parse_cfg(tmp_path / "missing.cfg")


def test_describe_rejects_unsupported_and_inconsistent_layers():
    base = "[net]\nwidth=64\nheight=64\nchannels=3\n"
    with pytest.raises(UserError, match=r"<cfg>:5: layer 0 \[route\] is not supported"):
        describe(parse_cfg(base + "[route]\nlayers=-1\n"))
    with pytest.raises(UserError, match=r"needs 40 input channels .* got 35"):
        describe(
            parse_cfg(base + "[convolutional]\nfilters=35\nactivation=linear\n[region]\nclasses=3\nnum=5\n")
        )
    with pytest.raises(UserError, match="activation=mish not supported"):
        describe(parse_cfg(base + "[convolutional]\nfilters=4\nactivation=mish\n"))


def test_generated_gpu_cfg_has_yolov2_tiny_voc_structure(voc_cfg):
    _, voc = voc_cfg
    ours = parse_cfg(generate_cfg([f"c{i}" for i in range(20)], "gpu", train_images=100))
    strip = [
        (i.kind, i.filters, i.size, i.stride, i.pad, i.batch_normalize, i.activation, i.out_h)
        for i in describe(ours)
    ]
    assert strip == [
        (i.kind, i.filters, i.size, i.stride, i.pad, i.batch_normalize, i.activation, i.out_h)
        for i in describe(voc)
    ]
    region = ours[-1].options
    assert region_spec(ours) == region_spec(voc)
    for key in ("bias_match", "coords", "num", "softmax", "jitter", "rescore", "object_scale", "absolute"):
        assert region[key] == voc[-1].options[key], key
    net = ours[0].options
    assert (net["batch"], net["subdivisions"], net["width"], net["height"]) == ("64", "8", "416", "416")


@pytest.mark.parametrize(
    ("classes", "images", "max_batches", "steps"),
    [(3, 100, 6000, "4800,5400"), (27, 1000, 54000, "43200,48600"), (2, 9000, 9000, "7200,8100")],
)
def test_max_batches_and_steps(classes, images, max_batches, steps):
    assert recommended_max_batches(classes, images) == max_batches
    sections = parse_cfg(generate_cfg([f"c{i}" for i in range(classes)], "gpu", train_images=images))
    net = sections[0].options
    assert (int(net["max_batches"]), net["steps"], net["scales"]) == (max_batches, steps, ".1,.1")
    assert describe(sections)[-2].filters == (classes + 5) * 5


def test_cpu_smoke_profile_is_small(smoke_cfg):
    _, sections = smoke_cfg
    infos = describe(sections)
    net = sections[0].options
    assert net_size(sections) == (128, 128)
    assert int(net["max_batches"]) == 50 and net["steps"] == "40,45"
    assert float(net["learning_rate"]) > 0.001 and int(net["burn_in"]) < 100
    assert sections[-1].options["random"] == "0"
    assert [i.filters for i in infos if i.kind == "convolutional"] == [4, 8, 16, 32, 64, 128, 256, 256, 40]
    assert total_gflops(infos) < 0.05
    # VOC anchors rescaled from the 13x13 grid to the 4x4 grid
    assert region_spec(sections).anchors[0] == pytest.approx(1.08 * 4 / 13, abs=1e-4)


def test_generate_cfg_rejects_bad_arguments():
    with pytest.raises(UserError, match="unknown profile 'tpu'"):
        generate_cfg(NAMES3, "tpu")
    with pytest.raises(UserError, match="multiple of 32"):
        generate_cfg(NAMES3, "gpu", size=400)
    with pytest.raises(UserError, match=r"need 5 positive w,h pairs \(10 numbers\), got 4: "):
        generate_cfg(NAMES3, "gpu", anchors=(1, 2, 3, 4))
    with pytest.raises(UserError, match="duplicate class names: a"):
        generate_cfg(["a", "b", "a"], "gpu")
    with pytest.raises(UserError, match="class list is empty"):
        generate_cfg([], "gpu")


def test_check_classes(smoke_cfg):
    _, sections = smoke_cfg
    check_classes(sections, NAMES3)
    with pytest.raises(UserError, match=r"smoke\.cfg:\d+: \[region\] classes=3 but obj.names lists 2 names"):
        check_classes(sections, NAMES3[:2])
    bad = parse_cfg(render_cfg(sections).replace("filters=40", "filters=45"))
    with pytest.raises(UserError, match=r"filters=45, but classes=3 num=5 needs \(classes\+5\)\*num = 40"):
        check_classes(bad, NAMES3)


def test_cfg_cli_writes_a_cfg(tmp_path, capsys):
    data = write_dataset_dir(tmp_path / "data", NAMES3, n_train=7000)
    out = tmp_path / "out" / "model.cfg"
    anchors = "1,1,2,2,3,3,4,4,5,5"
    assert (
        main(
            [
                "cfg",
                "--data",
                str(data),
                "--profile",
                "gpu",
                "--size",
                "320",
                "--anchors",
                anchors,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    sections = parse_cfg(out)
    assert net_size(sections) == (320, 320)
    assert sections[0].options["max_batches"] == "7000"
    assert region_spec(sections).anchors == (1, 1, 2, 2, 3, 3, 4, 4, 5, 5)
    check_classes(sections, NAMES3)
    printed = capsys.readouterr().out
    assert "3 classes, 320x320" in printed and "GFLOPs" in printed

    assert (
        main(
            ["cfg", "--data", str(data), "--profile", "cpu-smoke", "--max-batches", "120", "--out", str(out)]
        )
        == 0
    )
    assert parse_cfg(out)[0].options["max_batches"] == "120"


def test_cfg_cli_errors(tmp_path, capsys):
    out = tmp_path / "model.cfg"
    assert main(["cfg", "--data", str(tmp_path), "--profile", "gpu", "--out", str(out)]) == 2
    assert "obj.names: class names not found" in capsys.readouterr().err
    write_dataset_dir(tmp_path, NAMES3, n_train=3)
    assert (
        main(["cfg", "--data", str(tmp_path), "--profile", "gpu", "--anchors", "1,x", "--out", str(out)]) == 2
    )
    assert "--anchors: expected comma-separated numbers" in capsys.readouterr().err
    assert not out.exists()
