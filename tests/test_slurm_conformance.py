"""The Slurm backend passes the shared conformance suite on the real cluster."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance import BackendConformance


@pytest.mark.slurm
class TestSlurmConformance(BackendConformance):
    @pytest.fixture
    def scheduler(self, slurm: Any) -> dict[str, Any]:
        return {"type": "slurm", "partition": slurm.partition}


@pytest.mark.slurm
class TestSlurmNoArrayConformance(BackendConformance):
    """`array = false`: one sbatch per job, the same behaviour."""

    @pytest.fixture
    def scheduler(self, slurm: Any) -> dict[str, Any]:
        return {"type": "slurm", "array": False}
