"""mvNCCompile command construction, the missing-toolkit error and the runner (fake compiler)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge_image.contract.errors import UserError
from training_scripts.darknet.cfg import parse_cfg
from training_scripts.darknet.profiles import generate_cfg
from training_scripts.darknet.weights import random_weights, write_weights
from training_scripts.export import ncs
from training_scripts.export.bundle import export_bundle


def test_default_command_is_the_documented_one(tmp_path: Path) -> None:
    command = ncs.compile_command(tmp_path / "model.pb", tmp_path / "model.graph")
    assert command.argv == (
        "mvNCCompile",
        "model.pb",
        "-s",
        "12",
        "-in",
        "input",
        "-on",
        "output",
        "-o",
        "model.graph",
    )
    assert command.workdir == tmp_path.resolve()
    assert command.graph == tmp_path.resolve() / "model.graph"


def test_prefix_runs_it_in_a_container_with_the_bundle_mounted(tmp_path: Path) -> None:
    command = ncs.compile_command(
        tmp_path / "model.pb", tmp_path / "model.graph", shaves=4, prefix=ncs.DOCKER_PREFIX
    )
    argv = list(command.argv)
    assert argv[:6] == ["docker", "run", "--rm", "-v", f"{tmp_path.resolve()}:/work", "-w"]
    assert argv[argv.index("mvNCCompile") :] == [
        "mvNCCompile", "model.pb", "-s", "4", "-in", "input", "-on", "output", "-o", "model.graph",
    ]  # fmt: skip
    assert ncs.NCSDK_IMAGE in argv
    list_prefix = ncs.compile_command(tmp_path / "model.pb", tmp_path / "model.graph", prefix=["env", "A=1"])
    assert list_prefix.argv[:3] == ("env", "A=1", "mvNCCompile")


def test_prefix_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ncs.PREFIX_ENV, "ssh trainer")
    assert ncs.resolve_prefix(None) == "ssh trainer"
    assert ncs.resolve_prefix("") == ""
    monkeypatch.delenv(ncs.PREFIX_ENV)
    assert ncs.resolve_prefix(None) == ""


@pytest.mark.parametrize("shaves", [0, 17])
def test_bad_shaves(tmp_path: Path, shaves: int) -> None:
    with pytest.raises(UserError, match=f"--ncs-shaves {shaves}: must be 1..16"):
        ncs.compile_command(tmp_path / "model.pb", tmp_path / "model.graph", shaves=shaves)


def test_graph_must_be_beside_the_pb(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"must be written beside model\.pb"):
        ncs.compile_command(tmp_path / "model.pb", tmp_path / "sub" / "model.graph")


def test_missing_toolkit_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError) as err:
        ncs.run_compile(ncs.compile_command(tmp_path / "model.pb", tmp_path / "model.graph"))
    message = str(err.value)
    assert message.startswith(
        "mvNCCompile not found on PATH: the NCS graph needs the Movidius NCSDK 2.x toolkit"
    )
    assert ncs.PREFIX_ENV in message and "--formats" in message and "\n" not in message
    with pytest.raises(UserError, match=r"docker .*not found on PATH"):
        ncs.check_toolkit(
            ncs.compile_command(tmp_path / "m.pb", tmp_path / "m.graph", prefix=ncs.DOCKER_PREFIX)
        )


def fake_compiler(bin_dir: Path, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "mvNCCompile"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def test_runner_with_a_fake_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # writes its arguments into the -o file, like a compiler writing its graph
    fake_compiler(tmp_path / "bin", 'while [ "$1" != "-o" ]; do shift; done; echo "$PWD" > "$2"\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "bundle"
    work.mkdir()
    (work / "model.pb").write_bytes(b"pb")
    graph = ncs.run_compile(ncs.compile_command(work / "model.pb", work / "model.graph"))
    assert graph == work.resolve() / "model.graph"
    assert graph.read_text().strip() == str(work.resolve())


def test_runner_reports_the_compiler_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_compiler(
        tmp_path / "bin",
        'echo "[Error 5] Toolkit Error: Stage Details Not Supported: LeakyRelu" >&2\nexit 5\n',
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(
        UserError, match=r"mvNCCompile failed \(exit 5\): \[Error 5\] .*LeakyRelu \[mvNCCompile model.pb"
    ):
        ncs.run_compile(ncs.compile_command(tmp_path / "model.pb", tmp_path / "model.graph"))


def test_export_with_ncs_fails_fast_without_the_toolkit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg_path = tmp_path / "m.cfg"
    cfg_path.write_text(generate_cfg(["a", "b"], "cpu-smoke"))
    write_weights(tmp_path / "m.weights", random_weights(parse_cfg(cfg_path), seed=0))
    (tmp_path / "obj.names").write_text("a\nb\n")
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    monkeypatch.delenv(ncs.PREFIX_ENV, raising=False)
    lines: list[str] = []
    with pytest.raises(UserError, match="mvNCCompile not found on PATH"):
        export_bundle(
            cfg_path,
            tmp_path / "m.weights",
            tmp_path / "obj.names",
            tmp_path / "out",
            formats=["ncs"],
            log=lines.append,
        )
    assert lines == []  # refused before any conversion started
    assert not (tmp_path / "out").exists()
