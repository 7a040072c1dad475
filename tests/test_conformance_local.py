"""The local backend passes the shared conformance suite."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance import BackendConformance


class TestLocalConformance(BackendConformance):
    @pytest.fixture
    def scheduler(self) -> dict[str, Any]:
        return {"type": "local"}
