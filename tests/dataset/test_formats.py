"""VOC, COCO and YOLO import: exact labels, class lists, skipped items and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge_image.contract.errors import UserError
from tests.dataset.builders import all_files, coco_source, voc_source, write_image
from training_scripts.__main__ import main
from training_scripts.dataset.darknet_layout import read_list
from training_scripts.dataset.prepare import prepare_dataset

DOG_A = "1 0.175000 0.300000 0.250000 0.400000"  # corners 10,10-60,50 on 200x100
CAT_A = "0 0.625000 0.500000 0.250000 0.600000"  # corners 100,20-150,80 on 200x100


def label_lines(out: Path, name: str) -> list[str]:
    return (out / "labels" / f"{name}.txt").read_text().splitlines()


OBJECTS_1 = [("dog", (11, 11, 61, 51), 0), ("cat", (101, 21, 151, 81), 0), ("person", (1, 1, 9, 9), 1)]
OBJECTS_2 = [("cat", (1, 1, 100, 100), 0)]


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    return voc_source(
        tmp_path / "voc", {"000001.jpg": (200, 100, OBJECTS_1), "000002.jpg": (100, 100, OBJECTS_2)}
    )


def test_voc_import(voc: Path, tmp_path: Path) -> None:
    report = prepare_dataset("voc", voc, tmp_path / "out")
    out = tmp_path / "out"
    assert report["classes"] == ["cat", "dog"] and report["boxes"] == 3 and report["images"] == 2
    assert report["dropped"] == {"difficult": 1}
    assert report["size_mismatch"] == 0
    assert label_lines(out, "000001") == [CAT_A, DOG_A]
    assert label_lines(out, "000002") == ["0 0.495000 0.495000 0.990000 0.990000"]


def test_voc_unknown_class_is_an_error(voc: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = tmp_path / "names.txt"
    names.write_text("cat\n")
    args = ["prepare", "voc", "--src", str(voc), "--out", str(tmp_path / "out"), "--names", str(names)]
    assert main(args) == 2
    xml = voc / "Annotations" / "000001.xml"
    assert capsys.readouterr().err == f"error: {xml}: object 1: unknown class 'dog' (not in {names})\n"
    names.write_text("bird\ncat\ndog\n")
    report = prepare_dataset("voc", voc, tmp_path / "out", names=names)
    assert report["classes"] == ["bird", "cat", "dog"]  # declared classes kept, sorted


def test_voc_size_mismatch_is_counted(voc: Path, tmp_path: Path) -> None:
    xml = voc / "Annotations" / "000002.xml"
    xml.write_text(xml.read_text().replace("<width>100</width>", "<width>120</width>"))
    assert prepare_dataset("voc", voc, tmp_path / "out")["size_mismatch"] == 1


def test_voc_malformed_files(voc: Path, tmp_path: Path) -> None:
    xml = voc / "Annotations" / "000002.xml"
    xml.write_text("<annotation>\n<filename>000002.jpg</filename>\n<object>\n")
    with pytest.raises(UserError, match=rf"^{xml}:4: malformed XML"):
        prepare_dataset("voc", voc, tmp_path / "out")
    xml.write_text(
        "<annotation><filename>000002.jpg</filename><object><name>cat</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><ymax>5</ymax></bndbox></object></annotation>"
    )
    with pytest.raises(UserError, match=rf"^{xml}: object 1: missing <xmax>$"):
        prepare_dataset("voc", voc, tmp_path / "out")
    shutil.rmtree(voc / "Annotations")
    with pytest.raises(UserError, match=r"no VOC \.xml annotation files"):
        prepare_dataset("voc", voc, tmp_path / "out")


def coco_data() -> dict[str, list[dict[str, object]]]:
    return {
        "categories": [{"id": 1, "name": "dog"}, {"id": 7, "name": "cat"}],
        "images": [
            {"id": 10, "file_name": "a.jpg", "width": 200, "height": 100},
            {"id": 11, "file_name": "b.jpg", "width": 100, "height": 100},
            {"id": 12, "file_name": "neg.jpg", "width": 50, "height": 50},
        ],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 1, "bbox": [10, 10, 50, 40], "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 7, "bbox": [100, 20, 50, 60]},
            {"id": 3, "image_id": 11, "category_id": 7, "bbox": [0, 0, 100, 100], "iscrowd": 1},
        ],
    }


SIZES = {"a.jpg": (200, 100), "b.jpg": (100, 100), "neg.jpg": (50, 50)}


def test_coco_import(tmp_path: Path) -> None:
    src = coco_source(tmp_path / "coco", coco_data(), SIZES)
    report = prepare_dataset("coco", src, tmp_path / "out")
    out = tmp_path / "out"
    assert report["classes"] == ["cat", "dog"] and report["images"] == 3 and report["boxes"] == 2
    assert report["dropped"] == {"crowd": 1} and report["negative_images"] == 2
    assert label_lines(out, "a") == [CAT_A, DOG_A]
    assert label_lines(out, "neg") == []


COCO_ERRORS = [
    ("annotations", 1, "category_id", 99, "annotations[1]: unknown category_id 99 (not in 'categories')"),
    ("annotations", 0, "image_id", 5, "annotations[0]: unknown image_id 5"),
    (
        "annotations",
        0,
        "bbox",
        [1, 2, 3],
        "annotations[0]: 'bbox' must be [x, y, width, height] numbers, got [1, 2, 3]",
    ),
    ("images", 0, "file_name", None, "images[0]: missing 'file_name'"),
    ("categories", 1, "name", "dog", "categories[1]: category name 'dog' declared twice"),
]


@pytest.mark.parametrize(
    ("section", "index", "key", "value", "message"),
    COCO_ERRORS,
    ids=["category", "image_id", "bbox", "file_name", "duplicate_name"],  # no "images" in tmp paths
)
def test_coco_errors(tmp_path: Path, section: str, index: int, key: str, value: object, message: str) -> None:
    data = coco_data()
    if value is None:
        data[section][index].pop(key)
    else:
        data[section][index][key] = value
    src = coco_source(tmp_path / "coco", data, SIZES)
    path = src / "annotations" / "instances_default.json"
    with pytest.raises(UserError) as info:
        prepare_dataset("coco", src, tmp_path / "out")
    assert str(info.value) == f"{path}: {message}"


def test_coco_without_annotations_list_is_an_error(tmp_path: Path) -> None:
    data = coco_data()
    data.pop("annotations")
    src = coco_source(tmp_path / "coco", data, SIZES)
    with pytest.raises(UserError, match=r"missing list 'annotations' \(not a COCO detection file\?\)$"):
        prepare_dataset("coco", src, tmp_path / "out")


def test_coco_malformed_json_names_the_line(tmp_path: Path) -> None:
    src = coco_source(tmp_path / "coco", coco_data(), SIZES)
    path = src / "annotations" / "instances_default.json"
    path.write_text('{\n "images": [\n  {"id": 1,,}\n ]\n}\n')
    with pytest.raises(UserError, match=rf"^{path}:3:\d+: invalid JSON"):
        prepare_dataset("coco", src, tmp_path / "out")


def test_yolo_round_trip_of_a_prepared_dataset(synth_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "again"
    report = prepare_dataset("yolo", synth_dataset, out)
    original = json.loads((synth_dataset / "report.json").read_text())
    assert report["images"] == original["images"] and report["boxes"] == original["boxes"]
    assert report["dropped"] == {} and report["clipped"] == 0
    assert all_files(out / "labels") == all_files(synth_dataset / "labels")
    assert (out / "obj.names").read_bytes() == (synth_dataset / "obj.names").read_bytes()
    for name in ("train", "valid", "test"):
        again = [p.name for p in read_list(out / f"{name}.txt")]
        assert again == [p.name for p in read_list(synth_dataset / f"{name}.txt")]


def yolo_folder(root: Path) -> Path:
    (root / "labels").mkdir(parents=True)
    (root / "obj.names").write_text("b\na\n")
    write_image(root / "images" / "x.jpg", 100, 50)
    write_image(root / "images" / "y.png", 40, 40)
    write_image(root / "images" / "z.jpg", 40, 40)  # no label file: a negative
    (root / "labels" / "x.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.25 0.25 0.1 0.1\n")
    (root / "labels" / "y.txt").write_text("1 0.5 0.5 1.2 0.5\n")  # wider than the image: clipped
    return root


def test_yolo_import_remaps_ids_to_sorted_names(tmp_path: Path) -> None:
    report = prepare_dataset("yolo", yolo_folder(tmp_path / "yolo"), tmp_path / "out")
    out = tmp_path / "out"
    assert report["classes"] == ["a", "b"] and report["clipped"] == 1 and report["negative_images"] == 1
    assert report["source"] == {"names_file": "obj.names", "images_without_label_file": 1}
    assert label_lines(out, "x") == [
        "0 0.250000 0.250000 0.100000 0.100000",
        "1 0.500000 0.500000 0.200000 0.400000",
    ]
    assert label_lines(out, "y") == ["0 0.500000 0.500000 1.000000 0.500000"]
    assert (out / "images" / "y.jpg").read_bytes().startswith(b"\xff\xd8\xff")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("2 0.5 0.5 0.1 0.1\n", "class id 2 outside 0..1 (2 names)"),
        ("0 0.5 0.5 0.1\n", "expected 'class cx cy w h', got 4 columns"),
        ("0 0.5 0.5 0.1 wide\n", "expected an integer class and 4 numbers, got '0 0.5 0.5 0.1 wide'"),
    ],
)
def test_yolo_label_errors(tmp_path: Path, content: str, message: str) -> None:
    src = yolo_folder(tmp_path / "yolo")
    label = src / "labels" / "x.txt"
    label.write_text("1 0.5 0.5 0.1 0.1\n" + content)
    with pytest.raises(UserError) as info:
        prepare_dataset("yolo", src, tmp_path / "out")
    assert str(info.value) == f"{label}:2: {message}"


def test_yolo_without_names_is_an_error(tmp_path: Path) -> None:
    src = yolo_folder(tmp_path / "yolo")
    (src / "obj.names").unlink()
    with pytest.raises(UserError, match=r"no obj\.names or classes\.txt"):
        prepare_dataset("yolo", src, tmp_path / "out")
