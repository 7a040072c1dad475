"""Cloud workdirs: a run's state in a bucket (`s3://`, `gs://`, `az://`).

The runner keeps what only it uses (wrapper scripts, journal, lock) in a local
staging folder, and mirrors the journal into the bucket. Jobs put what they
produce into the bucket:

- with `mounted_workdir` (the bucket mounted on the execution host), the
  wrapper writes its files there as on a local disk;
- without it, the wrapper writes them to a local scratch folder and copies
  each one into the bucket with the storage's command-line tool (`aws`,
  `gcloud storage`, `azcopy`), then drops an event object.

`CloudPoller` has the poller's interface: one LIST of `events/` per pass, one
GET per job it names; its sweep is one GET of the rc object per job in flight.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xqdecl.errors import BackendError, SpecError
from xqdecl.store.poller import RC_READ_LIMIT, Change, parse_event_name, parse_rc

SCHEMES = ("s3://", "gs://", "az://")


def is_cloud(workdir: str) -> bool:
    return workdir.startswith(SCHEMES)


def staging_dir(spec_base: Path, workdir: str, run: str) -> Path:
    """The local folder for a cloud run's scripts, journal and lock."""
    digest = hashlib.sha1(workdir.encode()).hexdigest()[:10]
    return spec_base / ".xqdecl-staging" / f"{run}-{digest}"


def _path(url: str) -> Any:
    try:
        from panpath import PanPath
    except ImportError as exc:  # pragma: no cover - panpath is a dependency
        raise SpecError(f"cloud workdirs need panpath: {exc}") from None
    return PanPath(url)


class CloudStore:
    """The bucket prefix of one run: `<workdir>/<run>`."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def _p(self, rel: str) -> Any:
        return _path(f"{self.url}/{rel}")

    def read_bytes(self, rel: str) -> bytes | None:
        """An object's bytes, or None when it does not exist."""
        try:
            data: bytes = self._p(rel).read_bytes()
        except FileNotFoundError:
            return None
        except Exception as exc:  # the SDKs raise their own types
            raise BackendError(f"cannot read {self.url}/{rel}: {exc}") from None
        return data

    def write_bytes(self, rel: str, data: bytes) -> None:
        try:
            self._p(rel).write_bytes(data)
        except Exception as exc:
            raise BackendError(f"cannot write {self.url}/{rel}: {exc}") from None

    def names(self, rel: str) -> list[str]:
        """Names of the objects directly under `rel/` ([] when there are none)."""
        try:
            return [p.name for p in self._p(rel).iterdir()]
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise BackendError(f"cannot list {self.url}/{rel}: {exc}") from None

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            try:
                self._p(rel).unlink()
            except FileNotFoundError:
                raise
            except Exception as exc:
                raise BackendError(f"cannot delete {self.url}/{rel}: {exc}") from None


class CloudPoller:
    """The poller interface over a bucket (see docs/internals.md)."""

    def __init__(self, store: CloudStore):
        self.store = store
        self.trials: dict[int, int] = {}
        self.started: set[int] = set()

    def __len__(self) -> int:
        return len(self.trials)

    def watch(self, jobs: Iterable[tuple[int, int]]) -> None:
        for index, trial in jobs:
            self.trials[index] = trial
            self.started.discard(index)

    def unwatch(self, indexes: Iterable[int]) -> None:
        for index in indexes:
            self.trials.pop(index, None)
            self.started.discard(index)

    def rc(self, index: int, trial: int) -> int | None:
        """The rc object of a trial, parsed (None: missing or not usable yet)."""
        return self._rc(index, trial)

    def _rc(self, index: int, trial: int) -> int | None:
        data = self.store.read_bytes(f"jobs/{index}/rc.{trial}")
        return None if data is None else parse_rc(data[:RC_READ_LIMIT])

    def poll_events(self) -> list[Change]:
        changes: list[Change] = []
        for name in self.store.names("events"):
            parsed = parse_event_name(name)
            if parsed is not None:
                index, trial, ended, _ = parsed  # the rc object is the truth here
                if self.trials.get(index) == trial:
                    rc = self._rc(index, trial) if ended else None
                    if ended and rc is None:
                        continue  # the rc object is not visible yet: keep the event
                    changes.append(self._change(index, trial, rc))
            self.store.delete(f"events/{name}")
        return changes

    def sweep(self) -> list[Change]:
        changes: list[Change] = []
        for index, trial in list(self.trials.items()):
            rc = self._rc(index, trial)
            if rc is not None:
                changes.append(self._change(index, trial, rc))
        return changes

    def _change(self, index: int, trial: int, rc: int | None) -> Change:
        self.started.add(index)
        if rc is not None:
            self.unwatch([index])
        return (index, trial, True, rc)


#: shell for the wrapper, per storage: `_xq_put FILE URL` copies one file into the
#: bucket; `_xq_put_trial URL` copies every file of this trial (`*.<trial>`) under URL/
_TOOLS = {
    "s3://": (
        'aws s3 cp --quiet --only-show-errors "$1" "$2"',
        'aws s3 cp --quiet --only-show-errors --recursive --exclude "*" '
        '--include "*.$_xq_t" "$_xq_m/" "$1/"',
    ),
    "gs://": (
        'gcloud storage cp --quiet "$1" "$2"',
        'gcloud storage cp --quiet "$_xq_m"/*."$_xq_t" "$1/"',
    ),
    "az://": (
        'azcopy copy --log-level=ERROR "$1" "$2"',
        'azcopy copy --log-level=ERROR "$_xq_m/*.$_xq_t" "$1/"',
    ),
}


def upload_functions(url: str) -> str:
    """The shell functions a wrapper uses to put its files into the bucket."""
    for scheme, (put, put_trial) in _TOOLS.items():
        if url.startswith(scheme):
            log = '>/dev/null 2>>"$_xq_m/upload.$_xq_t.log"'
            return (
                f"_xq_put() {{ {put} {log}; }}\n"
                f"_xq_put_trial() {{ {put_trial} {log}; }}\n"
                f"_xq_up={shlex.quote(url)}"
            )
    raise SpecError(f"not a cloud workdir: {url}")
