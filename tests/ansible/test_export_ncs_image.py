"""The export role's NCSDK compiler image: built once from NCSDK's Dockerfile at the pinned tag.

``docker`` is a stand-in on PATH that records its argv and answers ``image inspect`` from a
marker file, so the role's logic (inspect, build only when missing) runs for real here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.ansible.runner import run_playbook

PLAYBOOK = """\
- name: Provide the NCSDK image
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the role's image tasks
      ansible.builtin.include_role:
        name: export
        tasks_from: ncs-image.yml
"""

FAKE_DOCKER = """#!/usr/bin/env python3
import json, os, sys
state = os.environ["FAKE_DOCKER_DIR"]
with open(os.path.join(state, "calls.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
marker = os.path.join(state, "image")
if sys.argv[1:3] == ["image", "inspect"]:
    if os.path.exists(marker):
        print("sha256:abc")
        sys.exit(0)
    print("Error: No such image", file=sys.stderr)
    sys.exit(1)
if sys.argv[1] == "build":
    open(marker, "w").close()
    sys.exit(0)
sys.exit(3)
"""


def test_image_is_built_once_from_the_pinned_tag(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER, encoding="utf-8")
    docker.chmod(0o755)
    monkeypatch.setenv("FAKE_DOCKER_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    playbook = tmp_path / "image.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    extra = {"ansible_python_interpreter": sys.executable}
    first = run_playbook(playbook, inventory="localhost,", tmp=tmp_path, extra_vars=extra, timeout=120)
    assert first.returncode == 0, first.tail()
    assert first.changed() == 1
    second = run_playbook(playbook, inventory="localhost,", tmp=tmp_path, extra_vars=extra, timeout=120)
    assert second.returncode == 0 and second.changed() == 0, second.tail()
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    builds = [c for c in calls if c[0] == "build"]
    assert builds == [
        [
            "build", "-t", "ncsdk:2.10.01.01", "-f", "extras/docker/Dockerfile",
            "https://github.com/movidius/ncsdk.git#v2.10.01.01",
        ]
    ]  # fmt: skip
    assert [c[:2] for c in calls].count(["image", "inspect"]) == 2


def test_role_defaults_match_the_exporter_constants() -> None:
    """The role and `training_scripts.export.ncs` name the same image, tag and container prefix."""
    import yaml

    from tests.ansible.runner import ROLES_DIR
    from training_scripts.export import ncs

    defaults = yaml.safe_load((ROLES_DIR / "export" / "defaults" / "main.yml").read_text(encoding="utf-8"))
    assert defaults["export_ncs_image"] == ncs.NCSDK_IMAGE
    assert defaults["export_ncs_tag"] == ncs.NCSDK_TAG
    assert (
        defaults["export_ncs_prefix"].replace("{{ export_ncs_image }}", ncs.NCSDK_IMAGE) == ncs.DOCKER_PREFIX
    )
