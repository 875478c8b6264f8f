"""Inventories, not memory: the docs list every setting, and the README's commands exist."""

from __future__ import annotations

import os
import re
from pathlib import Path

from strongroom.engine.index import INDEX_SETTINGS
from strongroom.settings import SETTINGS

ROOT = Path(__file__).parent.parent


def test_every_node_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.name}`" in text, setting.name


def test_every_index_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for name in INDEX_SETTINGS:
        assert f"`{name}`" in text, name


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert block and readme.index("```bash") < 30
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["./scripts/demo", "./scripts/test"]
    for command in commands:
        path = ROOT / command
        assert path.exists() and os.access(path, os.X_OK)


def test_ci_runs_the_readme_test_command() -> None:
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()
