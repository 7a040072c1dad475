"""SSH: jobs run detached on a set of hosts that share the workdir's filesystem.

Each server gets one multiplexed master connection (ControlMaster, its socket
in a short private folder under /tmp; ControlPersist is its idle timeout, so a
dead runner leaves nothing behind). Every call is then one session on that
connection running `bash -s` with a script on stdin: one per server starts all
the jobs of a batch there as session leaders (`setsid bash job.sh TRIAL &`),
one per server reads /proc for all its jobs in a poll, one per server cancels
(TERM to each process group, KILL after a grace). The remote host needs bash,
setsid and a Linux /proc, nothing of xqdecl.

Job ids are `<server index>:<pid>.<start ticks>`: the start time (field 22 of
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from xqdecl.backends import liveness
from xqdecl.backends.base import Backend, BackendContext, JobState, Liveness, Submission, Submitted
from xqdecl.backends.command import run_command
from xqdecl.errors import SchedulerError
from xqdecl.spec import SshOptions

log = logging.getLogger("xqdecl.backends.ssh")


def _log(text: str) -> None:
    log.warning("%s", text)

#: /proc/$p/stat into the positional parameters: $1 = state, ${20} = start ticks
_STAT = 'read -r l </proc/"$p"/stat 2>/dev/null && set -- ${l##*") "}'
#: `start INDEX SCRIPT TRIAL`: a detached session leader; prints "J index pid ticks"
_START = """start() {
  setsid bash "$2" "$3" </dev/null >/dev/null 2>&1 &
  i=$1 p=$!
  STAT && echo "J $i $p ${20}" || echo "J $i $p"
}
""".replace("STAT", _STAT)
#: "pid.ticks state" of each live pid of PIDS (what liveness.parse_ps reads)
_QUERY = "for p in PIDS; do " + _STAT + ' && echo "$p.${20} $1"; done\n'
#: SIG to the group of each of JIDS (pid.ticks) whose start time matches; up to TICKS
#: tenths of a second for the leaders to end; then KILL what is left of the groups
_SIGNAL = """left= all=
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
""".replace("STAT", _STAT)
_ALL = "for d in /proc/[0-9]*; do p=${d#/proc/}; " + _STAT + ' && echo "$p.${20} $1"; done\n'
_FACTS = "uname -n; sed -n 's/^btime //p' /proc/stat; getconf CLK_TCK"


@dataclass(eq=False)
class _Server:
    """One host and its master connection."""

    index: int
    label: str  # user@host:port, for messages
    argv: list[str]  # ssh and its options, without the destination
    dest: str
    control: str = ""  # the master's socket (set on first use)
    up: bool | None = None  # None: not tried (or to check again)
    error: str = ""
    tried: float = 0.0
    jobs: set[str] = field(default_factory=set)  # our jids in flight there
    placing: int = 0  # jobs being started there by concurrent submits
    say: Callable[[str], None] = _log  # warnings for the user (the run's output layer)
    facts: list[str] = field(default_factory=list)  # hostname, boot time, clock ticks/s
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def ensure(self, retry_after: float, timeout: float, persist: int) -> bool:
        """Whether the server answers; (re)opens the master connection if need be."""
        async with self.lock:
            if self.up and os.path.exists(self.control):
                return True
            if self.up is False and time.monotonic() - self.tried < retry_after:
                return False
            self.tried = time.monotonic()
            error = await self._open(timeout, persist)
            if error and (self.up is not False or error != self.error):
                self.say(f"warning: ssh server {self.label} is unreachable: {error}")
            elif not error and self.up is False:
                self.say(f"ssh server {self.label} is reachable again")
            self.up, self.error = not error, error
            return self.up

    async def _open(self, timeout: float, persist: int) -> str:
        """Start the master and read the host's facts: '' or the error."""
        await self.exit_master()
        argv = [*self.argv, "-o", f"ControlPath={self.control}", "-o", "ControlMaster=yes",
                "-o", f"ControlPersist={persist}", "-N", "-f", self.dest]
        try:  # the master lives on in the background, holding its output: `detached`
            rc, _, err = await run_command(argv, timeout, detached=True)
            if rc != 0:
                said = [ln for ln in err.splitlines() if ln.strip()]
                return said[-1] if said else f"ssh exited with status {rc}"
            rc, out, text = await self.run(_FACTS, timeout)
        except SchedulerError as exc:
            return str(exc)
        self.facts = out.split()
        return "" if rc == 0 else text or f"exit status {rc}"

    async def run(self, script: str, timeout: float) -> tuple[int, str, str]:
        """`script` run by bash there: (status, stdout, last stderr line); 255 is ssh's."""
        argv = [*self.argv, "-o", f"ControlPath={self.control}", "-o", "ControlMaster=no",
                self.dest, "bash -s"]
        try:
            rc, out, err = await run_command(argv, timeout, stdin=script.encode())
        except SchedulerError as exc:
            raise SchedulerError(f"{self.label}: {exc}") from None
        lines = [ln for ln in err.splitlines() if ln.strip()]
        return rc, out, lines[-1] if lines else ""

    async def exit_master(self) -> None:
        if not self.control or not os.path.exists(self.control):
            return
        argv = [*self.argv, "-o", f"ControlPath={self.control}", "-O", "exit", self.dest]
        with contextlib.suppress(SchedulerError):
            await run_command(argv, 10)
        with contextlib.suppress(OSError):
            os.unlink(self.control)


class SshBackend(Backend[SshOptions]):
    arrays = False
    whole_fill = True  # one call per server for the whole fill
    query_interval = 5.0
    lost_grace = 30.0  # a shared filesystem may show the rc file late
    connect_timeout = 10
    retry_down = 30.0  # seconds before an unreachable server is tried again
    unreachable_grace = 120.0  # seconds the jobs of a silent server are assumed alive
    persist = 300  # ControlPersist: the master's idle timeout

    def __init__(self, options: SshOptions, ctx: BackendContext) -> None:
        super().__init__(options, ctx)
        self._dir = ""  # made on first use: short socket paths, private to us
        self._servers: list[_Server] = []
        self._by_key: dict[tuple[object, ...], _Server] = {}
        self._silent_since: dict[int, float] = {}
        self._snapshots: dict[int, tuple[float, dict[str, str]]] = {}  # for reattach
        self._pool(options)  # the run's servers come first: indexes stay stable on resume

    def _pool(self, options: SshOptions) -> list[_Server]:
        """The servers of these options (registered on first sight)."""
        pool = []
        for s in options.servers:
            key = (s.host, s.port, s.user, s.keyfile, tuple(options.ssh_options))
            if key not in self._by_key:
                argv = ["ssh", *options.ssh_options, "-o", "BatchMode=yes", "-o",
                        f"ConnectTimeout={self.connect_timeout}", "-o", "ServerAliveInterval=15",
                        "-p", str(s.port), *(["-l", s.user] if s.user else []),
                        *(["-i", s.keyfile] if s.keyfile else [])]
                i = len(self._servers)
                label = f"{s.user + '@' if s.user else ''}{s.host}:{s.port}"
                self._servers.append(_Server(i, label, argv, s.host, say=self.ctx.message))
                self._by_key[key] = self._servers[-1]
            pool.append(self._by_key[key])
        return pool

    async def _ensure(self, srv: _Server) -> bool:
        if not self._dir:
            self._dir = tempfile.mkdtemp(prefix="xq-ssh-", dir="/tmp")
        srv.control = srv.control or f"{self._dir}/{srv.index}"
        return await srv.ensure(self.retry_down, self.connect_timeout + 20, self.persist)

    # -- submit -------------------------------------------------------------------------
    async def submit(self, batch: Sequence[Submission]) -> list[Submitted]:
        """The whole fill at once (`whole_fill`): each server gets one call for all."""
        results: list[Submitted] = []
        pools: dict[tuple[int, ...], list[Submission]] = {}
        for sub in batch:
            pools.setdefault(tuple(s.index for s in self._pool(sub.options)), []).append(sub)
        for indexes, subs in pools.items():
            pool = [self._servers[i] for i in indexes]
            results += await self._place(pool, subs, any(r.jid for r in results))
        return results

    async def _place(self, pool: list[_Server], subs: list[Submission], submitted: bool
                     ) -> list[Submitted]:
        """Start `subs` on the least loaded reachable servers of `pool`; one call each."""
        results: list[Submitted] = []
        while subs:
            ups = await asyncio.gather(*(self._ensure(s) for s in pool))
            live = [s for s, up in zip(pool, ups, strict=True) if up]
            if not live:
                why = "no ssh server is reachable (" + "; ".join(
                    f"{s.label}: {s.error}" for s in pool) + ")"
                if not (submitted or results):
                    raise SchedulerError(why)  # the runner retries, then ends the run (exit 4)
                return results + [Submitted(s.index, None, why) for s in subs]
            plan: dict[int, list[Submission]] = {}
            for sub in subs:
                target = min(live, key=lambda s: (len(s.jobs) + s.placing, s.index))
                target.placing += 1
                plan.setdefault(target.index, []).append(sub)
            try:
                done = await asyncio.gather(*(self._start(self._servers[i], part)
                                              for i, part in plan.items()))
            finally:
                for i, part in plan.items():
                    self._servers[i].placing -= len(part)
            subs = [s for started, again in done for s in again]  # their server went away
            results += [r for started, again in done for r in started]
        return results

    async def _start(self, srv: _Server, subs: list[Submission]
                     ) -> tuple[list[Submitted], list[Submission]]:
        """One call starting `subs` on `srv`: (results, jobs to place elsewhere)."""
        root = self.ctx.mounted_rundir.rstrip("/")
        script = _START + "".join(
            f"start {s.index} {shlex.quote(f'{root}/jobs/{s.index}/job.sh')} {s.trial}\n"
            for s in subs)
        try:
            rc, out, said = await srv.run(script, self.command_timeout)
        except SchedulerError as exc:  # it may have started some: never start them twice
            return [Submitted(s.index, None, str(exc)) for s in subs], []
        pids = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "J" and parts[1].isdigit():
                pids[int(parts[1])] = f"{srv.index}:{parts[2]}.{''.join(parts[3:4])}"
        srv.jobs.update(pids.values())
        results = [Submitted(s.index, pids[s.index]) for s in subs if s.index in pids]
        rest = [s for s in subs if s.index not in pids]
        if rc == 255 and rest:  # the connection failed: these never ran
            srv.up, srv.error = False, said or "connection lost"
            srv.say(f"warning: ssh server {srv.label} failed while starting jobs: {srv.error}")
            return results, rest
        why = f"could not start on {srv.label}: {said or f'exit status {rc}'}"
        return results + [Submitted(s.index, None, why) for s in rest], []

    # -- query --------------------------------------------------------------------------
    def _split(self, jids: Sequence[str]) -> dict[int, dict[str, str]]:
        """{server index: {"pid.ticks": jid}} (jids of no known server dropped)."""
        out: dict[int, dict[str, str]] = {}
        for jid in jids:
            idx, sep, local = jid.partition(":")
            known = sep and idx.isdigit() and int(idx) < len(self._servers)
            if known and local.partition(".")[0].isdigit():
                out.setdefault(int(idx), {})[local] = jid
        return out

    async def query(self, jids: Sequence[str]) -> dict[str, JobState]:
        by_server = self._split(jids)
        answers = await asyncio.gather(
            *(self._query_one(self._servers[i], mine) for i, mine in by_server.items()),
            return_exceptions=True)
        states: dict[str, JobState] = {}
        errors = []
        now = time.monotonic()
        for (i, mine), answer in zip(by_server.items(), answers, strict=True):
            if isinstance(answer, dict):
                self._silent_since.pop(i, None)
                states.update(answer)
                continue
            if not isinstance(answer, SchedulerError):
                raise answer
            errors.append(str(answer))
            if now - self._silent_since.setdefault(i, now) < self.unreachable_grace:
                states.update(dict.fromkeys(mine.values(), JobState(Liveness.RUNNING)))
        if errors and len(errors) == len(by_server):
            raise SchedulerError("; ".join(errors))
        return states

    async def _query_one(self, srv: _Server, mine: dict[str, str]) -> dict[str, JobState]:
        self._reachable(srv, await self._ensure(srv))
        pids = " ".join(sorted({local.partition(".")[0] for local in mine}))
        rc, out, said = await srv.run(_QUERY.replace("PIDS", pids), self.command_timeout)
        if rc == 255:
            srv.up = None  # look at the connection again next time
        self._connected(srv, rc, said)
        return {mine[k]: st for k, st in liveness.parse_ps(out, set(mine)).items()}

    # -- cancel -------------------------------------------------------------------------
    async def cancel(self, jids: Sequence[str]) -> None:
        await self._signal(jids, "TERM", self.cancel_grace)

    async def kill_now(self, jids: Sequence[str]) -> None:
        await self._signal(jids, "KILL", 0)

    async def _signal(self, jids: Sequence[str], sig: str, grace: float) -> None:
        self._snapshots.clear()
        async def one(srv: _Server, mine: dict[str, str]) -> None:
            self._reachable(srv, await self._ensure(srv))
            script = _SIGNAL.replace("JIDS", " ".join(mine)).replace("SIG", sig)
            script = script.replace("TICKS", str(int(grace * 10)))
            rc, _, said = await srv.run(script, grace + self.command_timeout)
            self._connected(srv, rc, said)

        answers = await asyncio.gather(
            *(one(self._servers[i], m) for i, m in self._split(jids).items()),
            return_exceptions=True)
        if errors := [str(a) for a in answers if isinstance(a, BaseException)]:
            raise SchedulerError("cancelling failed: " + "; ".join(errors))

    @staticmethod
    def _reachable(srv: _Server, up: bool) -> None:
        if not up:
            raise SchedulerError(f"ssh server {srv.label} is unreachable: {srv.error}")

    @staticmethod
    def _connected(srv: _Server, rc: int, said: str) -> None:
        """Raise when ssh itself failed (status 255) rather than the script."""
        if rc == 255:
            raise SchedulerError(f"ssh {srv.label}: {said or 'connection failed'}")

    # -- resume -------------------------------------------------------------------------
    async def reattach(self, jid: str | None, start_info: str) -> str | None:
        """Called once per live job on resume: answered from one /proc listing per server."""
        if jid:
            idx, _, local = jid.partition(":")
            if not idx.isdigit() or int(idx) >= len(self._servers):
                return None
            srv = self._servers[int(idx)]
            found = (await self._procs(srv)).get(local.partition(".")[0], "").split()
            alive = found[:1] == [local] and found[1:2] not in (["Z"], ["X"])
            return self._adopt(srv, jid) if alive else None
        parts = start_info.split()  # "host pid epoch" written by the wrapper
        for srv in self._servers if len(parts) >= 3 else []:
            found = (await self._procs(srv)).get(parts[1], "").split()  # also connects
            if srv.facts[:1] != parts[:1] or len(srv.facts) < 3 or not found:
                continue
            with contextlib.suppress(ValueError, ZeroDivisionError):
                ticks = int(found[0].partition(".")[2])
                started = float(srv.facts[1]) + ticks / float(srv.facts[2])
                if abs(started - float(parts[2])) < 5:  # written right after it started
                    return self._adopt(srv, f"{srv.index}:{found[0]}")
        return None

    def _adopt(self, srv: _Server, jid: str) -> str:
        srv.jobs.add(jid)
        return jid

    async def _procs(self, srv: _Server) -> dict[str, str]:
        """{pid: "pid.ticks state"} of every process there ({} if unreachable); kept 10 s."""
        now = time.monotonic()
        cached = self._snapshots.get(srv.index)
        if cached and now - cached[0] < 10:
            return cached[1]
        procs: dict[str, str] = {}
        if await self._ensure(srv):
            rc, out, _ = await srv.run(_ALL, self.command_timeout)
            procs = {ln.partition(".")[0]: ln for ln in out.splitlines() if rc != 255}
        self._snapshots[srv.index] = (now, procs)
        return procs

    def release(self, jid: str) -> None:
        idx = jid.partition(":")[0]
        if idx.isdigit() and int(idx) < len(self._servers):
            self._servers[int(idx)].jobs.discard(jid)

    async def close(self) -> None:
        await asyncio.gather(*(s.exit_master() for s in self._servers))
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def describe_group(self, count: int, options: SshOptions) -> str:
        hosts = ", ".join(s.label for s in self._pool(options))
        return f"jobs spread over {hosts}, at most {self.ctx.forks} in flight"
