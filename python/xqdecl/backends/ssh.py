"""SSH: jobs run detached on a set of hosts that share the workdir's filesystem.

Each server gets one multiplexed master connection (ControlMaster, its socket
in a short private folder under /tmp, ControlPersist as an idle timeout so a
dead runner leaves nothing behind). Every call then costs one session on that
connection: one `bash -s` per server starts all the jobs of a batch as session
leaders (`setsid bash job.sh <trial> &`), one per server reads `/proc` for all
its jobs in a poll, one per server cancels. The remote host needs bash,
setsid and a Linux /proc; nothing of xqdecl.

Job ids are `<server index>:<pid>.<start ticks>`; the start time (field 22 of
/proc/<pid>/stat) guards against a recycled pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel

from xqdecl import liveness
from xqdecl.backends.base import Backend, BackendContext, JobState, Liveness, Submission, Submitted
from xqdecl.backends.local import CANCEL_GRACE
from xqdecl.errors import BackendError
from xqdecl.spec import SshOptions

log = logging.getLogger("xqdecl.backends.ssh")

#: read /proc/$p/stat into the positional parameters: $1 = state, ${20} = start ticks
_STAT = 'read -r l </proc/"$p"/stat 2>/dev/null && set -- ${l##*") "}'
#: `start INDEX SCRIPT TRIAL`: a detached session leader; prints "J index pid ticks"
_START = """\
start() {
  setsid bash "$2" "$3" </dev/null >/dev/null 2>&1 &
  i=$1 p=$!
  STAT && echo "J $i $p ${20}" || echo "J $i $p"
}
""".replace("STAT", _STAT)
#: "pid.ticks state" of each live pid of PIDS (parse_ps reads it)
_QUERY = 'for p in PIDS; do ' + _STAT + ' && echo "$p.${20} $1"; done\n'
#: SIG to the process group of each JIDS (pid.ticks) whose start time matches, wait up to
#: TICKS tenths of a second for the leaders to end, then KILL what is left of the groups
_SIGNAL = """\
left= all=
for j in JIDS; do
  p=${j%%.*}; STAT && [ "${20}" = "${j#*.}" ] || continue
  kill -SIG -- -"$p" 2>/dev/null; left="$left $p"; all="$all $p"
done
n=0
while [ -n "$left" ] && [ "$n" -lt TICKS ]; do
  sleep 0.1; n=$((n + 1)); still=
  for p in $left; do STAT && [ "$1" != Z ] && still="$still $p"; done
  left=$still
done
for p in $all; do kill -KILL -- -"$p" 2>/dev/null; done
echo ok
""".replace("STAT", _STAT)


@dataclass(eq=False)
class _Server:
    index: int
    label: str  # user@host:port, for messages
    argv: list[str]  # ssh and its options, without the destination
    dest: str
    up: bool | None = None  # None: not tried yet
    error: str = ""
    tried: float = 0.0
    jobs: set[str] = field(default_factory=set)  # our jids in flight there
    placing: int = 0  # jobs being started there right now (by concurrent submits)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    facts: list[str] = field(default_factory=list)  # hostname, btime, clock ticks/s


class SshBackend(Backend):
    name = "ssh"
    arrays = False
    options_model: ClassVar[type[BaseModel]] = SshOptions
    poll_interval = 1.0
    query_interval = 5.0
    sweep_interval = 30.0
    lost_grace = 30.0  # a shared filesystem may show the rc file late
    command_timeout = float(os.environ.get("XQDECL_SSH_TIMEOUT", "60"))
    connect_timeout = 10
    #: seconds before a server found unreachable is tried again
    retry_down = 30.0
    #: seconds the jobs of a server that stopped answering are assumed alive
    unreachable_grace = 120.0
    persist = 300  # ControlPersist: the master's idle timeout

    def __init__(self, options: BaseModel, ctx: BackendContext) -> None:
        super().__init__(options, ctx)
        self._dir = ""
        self._servers: list[_Server] = []
        self._by_key: dict[tuple[object, ...], _Server] = {}
        self._silent_since: dict[int, float] = {}
        self._pool(options)  # the run's servers come first: indexes stay stable on resume

    # -- servers ----------------------------------------------------------------------
    def _pool(self, options: BaseModel) -> list[_Server]:
        assert isinstance(options, SshOptions)
        pool = []
        for s in options.servers:
            key = (s.host, s.port, s.user, s.keyfile, tuple(options.ssh_options))
            srv = self._by_key.get(key)
            if srv is None:
                argv = ["ssh", *options.ssh_options, "-o", "BatchMode=yes"]
                argv += ["-o", f"ConnectTimeout={self.connect_timeout}"]
                argv += ["-o", "ServerAliveInterval=15", "-p", str(s.port)]
                argv += ["-l", s.user] if s.user else []
                argv += ["-i", s.keyfile] if s.keyfile else []
                label = f"{s.user + '@' if s.user else ''}{s.host}:{s.port}"
                srv = _Server(len(self._servers), label, argv, s.host)
                self._servers.append(srv)
                self._by_key[key] = srv
            pool.append(srv)
        return pool

    def _control(self, srv: _Server) -> str:
        if not self._dir:
            self._dir = tempfile.mkdtemp(prefix="xq-ssh-", dir="/tmp")
        return f"{self._dir}/{srv.index}"

    def _argv(self, srv: _Server, command: str) -> list[str]:
        control = ["-o", f"ControlPath={self._control(srv)}", "-o", "ControlMaster=no"]
        return [*srv.argv, *control, srv.dest, command]

    async def _ensure(self, srv: _Server) -> bool:
        """Whether the server answers; (re)opens its master connection if need be."""
        async with srv.lock:
            if srv.up and os.path.exists(self._control(srv)):
                return True
            if srv.up is False and time.monotonic() - srv.tried < self.retry_down:
                return False
            srv.tried = time.monotonic()
            error = await self._open(srv)
            if error:
                if srv.up is not False or error != srv.error:
                    log.warning("ssh server %s is unreachable: %s", srv.label, error)
                srv.up, srv.error = False, error
                return False
            if srv.up is False:
                log.warning("ssh server %s is reachable again", srv.label)
            srv.up, srv.error = True, ""
            return True

    async def _open(self, srv: _Server) -> str:
        """Start the master connection and read the host's facts; '' or the error."""
        path = self._control(srv)
        if os.path.exists(path):  # a master that may be stale: end it, start afresh
            await self._exit_master(srv)
        master = [*srv.argv, "-o", f"ControlPath={path}", "-o", "ControlMaster=yes"]
        master += ["-o", f"ControlPersist={self.persist}", "-N", "-f", srv.dest]
        # the master stays in the background with our stderr: a file, never a pipe
        with tempfile.TemporaryFile(dir=self._dir) as err:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *master, stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL, stderr=err,
                )
            except OSError as exc:
                return f"cannot run ssh: {exc}"
            try:
                rc = await asyncio.wait_for(proc.wait(), self.connect_timeout + 20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                return f"no answer within {self.connect_timeout + 20} s"
            err.seek(0)
            said = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
        if rc != 0:
            return said[-1] if said else f"ssh exited with status {rc}"
        try:
            rc, out, text = await self._run(srv, "uname -n; sed -n 's/^btime //p' /proc/stat; "
                                            "getconf CLK_TCK", check=False)
        except BackendError as exc:
            return str(exc)
        if rc != 0:
            return text or f"exit status {rc}"
        srv.facts = out.split()
        return ""

    async def _run(self, srv: _Server, script: str, timeout: float | None = None,
                   check: bool = True) -> tuple[int, str, str]:
        """Run `script` with bash on the server: (status, stdout, last stderr line)."""
        argv = self._argv(srv, "bash -s")
        limit = timeout or self.command_timeout
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise BackendError(f"cannot run ssh: {exc}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(script.encode()), limit)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise BackendError(f"ssh {srv.label} did not answer within {limit:g} s") from None
        lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
        said = lines[-1] if lines else ""
        rc = proc.returncode or 0
        if check and rc == 255:  # ssh's own failure: the connection, not the script
            raise BackendError(f"ssh {srv.label}: {said or 'connection failed'}")
        return rc, out.decode(errors="replace"), said

    # -- submit -------------------------------------------------------------------------
    async def submit(self, batch: Sequence[Submission]) -> list[Submitted]:
        results: list[Submitted] = []
        groups: dict[tuple[int, ...], list[Submission]] = {}
        for sub in batch:
            pool = self._pool(sub.options)
            groups.setdefault(tuple(s.index for s in pool), []).append(sub)
        for indexes, subs in groups.items():
            pool = [self._servers[i] for i in indexes]
            results.extend(await self._submit_pool(pool, subs, any(r.jid for r in results)))
        return results

    async def _submit_pool(self, pool: list[_Server], subs: list[Submission],
                           submitted: bool) -> list[Submitted]:
        results: list[Submitted] = []
        while subs:
            ups = await asyncio.gather(*(self._ensure(s) for s in pool))
            live = [s for s, up in zip(pool, ups, strict=True) if up]
            if not live:
                why = "; ".join(f"{s.label}: {s.error}" for s in pool)
                if not (submitted or results):
                    raise BackendError(f"no ssh server is reachable ({why})")
                return results + [Submitted(s.index, None, f"no ssh server is reachable "
                                            f"({why})") for s in subs]
            plan: dict[int, list[Submission]] = {}
            for sub in subs:  # the least loaded server, counting jobs being placed
                target = min(live, key=lambda s: (len(s.jobs) + s.placing, s.index))
                target.placing += 1
                plan.setdefault(target.index, []).append(sub)
            try:
                done = await asyncio.gather(
                    *(self._start(self._servers[i], part) for i, part in plan.items())
                )
            finally:
                for i, part in plan.items():
                    self._servers[i].placing -= len(part)
            subs = []
            for started, again in done:
                results.extend(started)
                subs.extend(again)  # their server failed: try the others
        return results

    async def _start(self, srv: _Server, subs: list[Submission]
                     ) -> tuple[list[Submitted], list[Submission]]:
        """Start `subs` on one server in one call: (results, jobs to place elsewhere)."""
        root = self.ctx.mounted_rundir.rstrip("/")
        lines = [_START]
        lines += [f"start {s.index} {shlex.quote(f'{root}/jobs/{s.index}/job.sh')} {s.trial}"
                  for s in subs]
        try:
            rc, out, said = await self._run(srv, "\n".join(lines) + "\n")
        except BackendError as exc:
            srv.up, srv.error = False, str(exc)
            log.warning("ssh server %s failed while starting jobs: %s", srv.label, exc)
            return [], subs
        pids: dict[int, str] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "J" and parts[1].isdigit():
                pids[int(parts[1])] = f"{srv.index}:{parts[2]}.{''.join(parts[3:4])}"
        results = []
        for sub in subs:
            jid = pids.get(sub.index)
            if jid is None:
                why = said or f"exit status {rc}"
                results.append(Submitted(sub.index, None, f"could not start on {srv.label}: {why}"))
                continue
            srv.jobs.add(jid)
            results.append(Submitted(sub.index, jid))
        return results, []

    # -- query --------------------------------------------------------------------------
    def _split(self, jids: Sequence[str]) -> dict[int, dict[str, str]]:
        """jids by server index: {index: {"pid.ticks": jid}} (malformed jids dropped)."""
        out: dict[int, dict[str, str]] = {}
        for jid in jids:
            idx, sep, local = jid.partition(":")
            pid = local.partition(".")[0]
            if sep and idx.isdigit() and int(idx) < len(self._servers) and pid.isdigit():
                out.setdefault(int(idx), {})[local] = jid
        return out

    async def query(self, jids: Sequence[str]) -> dict[str, JobState]:
        by_server = self._split(jids)
        if not by_server:
            return {}
        answers = await asyncio.gather(
            *(self._query_one(self._servers[i], m) for i, m in by_server.items()),
            return_exceptions=True,
        )
        states: dict[str, JobState] = {}
        errors = []
        now = time.monotonic()
        for (i, mine), answer in zip(by_server.items(), answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, BackendError):
                    raise answer
                errors.append(str(answer))
                first = self._silent_since.setdefault(i, now)
                if now - first < self.unreachable_grace:  # assume they live on, for a while
                    states.update(dict.fromkeys(mine.values(), JobState(Liveness.RUNNING)))
                continue
            self._silent_since.pop(i, None)
            states.update(answer)
        if errors and len(errors) == len(by_server):
            raise BackendError("; ".join(errors))
        return states

    async def _query_one(self, srv: _Server, mine: dict[str, str]) -> dict[str, JobState]:
        if not await self._ensure(srv):
            raise BackendError(f"ssh server {srv.label} is unreachable: {srv.error}")
        pids = " ".join(sorted({local.partition(".")[0] for local in mine}))
        try:
            _, out, _ = await self._run(srv, _QUERY.replace("PIDS", pids))
        except BackendError:
            srv.up = None  # check the connection again next time
            raise
        found = liveness.parse_ps(out, set(mine))
        return {mine[local]: state for local, state in found.items()}

    # -- cancel -------------------------------------------------------------------------
    async def cancel(self, jids: Sequence[str]) -> None:
        await self._signal(jids, "TERM", CANCEL_GRACE)

    async def kill_now(self, jids: Sequence[str]) -> None:
        await self._signal(jids, "KILL", 0)

    async def _signal(self, jids: Sequence[str], sig: str, grace: float) -> None:
        by_server = self._split(jids)

        async def one(srv: _Server, mine: dict[str, str]) -> None:
            if not await self._ensure(srv):
                raise BackendError(f"ssh server {srv.label} is unreachable: {srv.error}")
            text = _SIGNAL.replace("JIDS", " ".join(mine)).replace("TICKS", str(int(grace * 10)))
            text = text.replace("SIG", sig)
            await self._run(srv, text, timeout=grace + self.command_timeout)

        answers = await asyncio.gather(
            *(one(self._servers[i], m) for i, m in by_server.items()), return_exceptions=True
        )
        errors = [str(a) for a in answers if isinstance(a, BaseException)]
        if errors:
            raise BackendError("cancelling failed: " + "; ".join(errors))

    # -- resume -------------------------------------------------------------------------
    async def reattach(self, jid: str | None, start_info: str) -> str | None:
        if jid:
            found = await super().reattach(jid, start_info)
        else:
            found = await self._from_start_info(start_info)
        if found:
            self._servers[int(found.partition(":")[0])].jobs.add(found)
        return found

    async def _from_start_info(self, info: str) -> str | None:
        """'host pid epoch' written by a wrapper -> its jid, when that process lives."""
        parts = info.split()
        if len(parts) < 3 or not parts[1].isdigit():
            return None
        for srv in self._servers:
            if not await self._ensure(srv) or len(srv.facts) < 3 or srv.facts[0] != parts[0]:
                continue
            p = parts[1]
            _, out, _ = await self._run(srv, f"p={p}; {_STAT} && echo ${{20}}", check=False)
            ticks = out.strip()
            if not ticks.isdigit():
                continue
            with contextlib.suppress(ValueError, ZeroDivisionError):
                started = float(srv.facts[1]) + int(ticks) / float(srv.facts[2])
                if abs(started - float(parts[2])) < 5:
                    return f"{srv.index}:{p}.{ticks}"
        return None

    def release(self, jid: str) -> None:
        idx = jid.partition(":")[0]
        if idx.isdigit() and int(idx) < len(self._servers):
            self._servers[int(idx)].jobs.discard(jid)

    async def _exit_master(self, srv: _Server) -> None:
        path = self._control(srv)
        argv = [*srv.argv, "-o", f"ControlPath={path}", "-O", "exit", srv.dest]
        with contextlib.suppress(OSError, TimeoutError):
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.wait_for(proc.wait(), 10)
        with contextlib.suppress(OSError):
            os.unlink(path)

    async def close(self) -> None:
        for srv in self._servers:
            if self._dir and os.path.exists(self._control(srv)):
                await self._exit_master(srv)
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = ""

    def describe_group(self, count: int, options: BaseModel) -> str:
        hosts = ", ".join(s.label for s in self._pool(options))
        return f"jobs spread over {hosts}, at most {self.ctx.forks} in flight"
