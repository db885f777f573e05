"""The AWS inventory's checksum variables accept what `sha256sum` prints, as its comments say.

The dataset and train roles require ``sha256:<64 hex>``; people paste the plain hex (or the
prefixed form, in either case) into EDGEYOLO_DATASET_SHA256 / EDGEYOLO_PRETRAINED_SHA256.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.ansible.runner import ANSIBLE_DIR, VENV_BIN, ansible_env

GROUP_VARS = ANSIBLE_DIR / "inventories" / "aws" / "group_vars" / "training.yml"
HEX = "0123456789abcdef" * 4

PLAYBOOK = f"""\
- name: Show the checksum variables of the aws inventory
  hosts: localhost
  gather_facts: false
  vars_files: [{GROUP_VARS}]
  tasks:
    - name: Print them as JSON
      ansible.builtin.debug:
        msg: "CHECKSUMS={{{{ [dataset_archive_checksum, train_pretrained_checksum] | to_json }}}}"
"""


def _checksums(tmp: Path, value: str) -> list[str]:
    playbook = tmp / "show.yml"
    playbook.write_text(PLAYBOOK, encoding="utf-8")
    env = {**ansible_env(tmp), "EDGEYOLO_DATASET_SHA256": value, "EDGEYOLO_PRETRAINED_SHA256": value}
    env["EDGEYOLO_BUCKET"] = "bucket"  # instead of the stack output (no AWS here)
    env.pop("ANSIBLE_CONFIG")  # no inventory plugins: only the variables are evaluated
    command = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", "-e", "ansible_connection=local"]
    proc = subprocess.run(
        [*command, str(playbook)],
        env={**env, "ANSIBLE_STDOUT_CALLBACK": "default", "PATH": os.environ["PATH"]},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if "CHECKSUMS=" in x)
    return json.loads(json.loads("{" + line.strip().rstrip(",") + "}")["msg"].split("=", 1)[1])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (HEX, f"sha256:{HEX}"),  # what sha256sum prints
        (f"sha256:{HEX}", f"sha256:{HEX}"),
        (HEX.upper(), f"sha256:{HEX}"),
        ("", ""),  # unset: the roles' own assert names the missing variable
        ("abc", "abc"),  # not a digest: left as given, so the roles' assert shows it
    ],
)
def test_plain_or_prefixed_sha256_reaches_the_roles_prefixed(
    tmp_path: Path, given: str, expected: str
) -> None:
    assert _checksums(tmp_path, given) == [expected, expected]
