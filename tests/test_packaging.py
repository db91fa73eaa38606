"""Packaging metadata: an SPDX license, the dev tools the suite needs, psutil as a real dependency."""

from __future__ import annotations

import os
import re

import pytest

tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads TOML")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        return tomllib.load(fh)


def test_license_is_an_spdx_string(project):
    # The table form warns on every install and stops being accepted by setuptools in 2027.
    assert project["project"]["license"] == "Apache-2.0"
    (setuptools,) = [r for r in project["build-system"]["requires"] if r.startswith("setuptools")]
    assert int(re.search(r">=(\d+)", setuptools)[1]) >= 77  # the first setuptools that reads it


def test_random_order_plugin_is_a_dev_dependency(project):
    assert any(r.startswith("pytest-randomly") for r in project["project"]["optional-dependencies"]["dev"])


def test_psutil_is_required_and_never_treated_as_optional(project):
    assert any(r.startswith("psutil") for r in project["project"]["dependencies"])
    for folder, _dirs, names in os.walk(os.path.join(ROOT, "autolog")):
        for name in names:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as fh:
                    assert "pip install psutil" not in fh.read(), name
