"""Regression: a fresh clone's first daemon died with "'module' object is not callable".

``dicomweb_daemon.metadata`` had a function ``strategies()`` and a submodule ``strategies``: when
plugin discovery imported the submodule first (no dropin cache yet), the package attribute became
the module and WADO-RS could not start."""
from __future__ import annotations

import importlib


def test_finding_strategies_survives_importing_the_submodule():
    """Importing the strategies submodule does not hide the function that finds the strategies."""
    package = importlib.import_module("dicomweb_daemon.metadata")
    importlib.import_module("dicomweb_daemon.metadata.strategies")
    found = package.find_strategies()
    assert {"Full", "MainDicomTags", "Extrapolate"} <= set(found)
