# ruff: noqa: E501, W291  (real scheduler output, verbatim: wide and space-padded)
"""Liveness parsers: outputs captured from the testbed's real Slurm 22.05 and Son
of Grid Engine 8.1.9, and the Rust parsers checked against the Python references."""

from __future__ import annotations

import pytest

from tests.oracles.liveness_ref import REFERENCE
from xqdecl.backends import liveness as lv
from xqdecl.backends.base import JobState, Liveness

native = pytest.importorskip("xqdecl._xqdecl")

P, R, D = JobState(Liveness.PENDING), JobState(Liveness.RUNNING), JobState(Liveness.DONE)


def F(reason: str) -> JobState:
    return JobState(Liveness.FAILED, reason)


def both(name: str, text: str, wanted: set[str]) -> dict[str, JobState]:
    """Parse with the reference and with Rust; they must agree."""
    ref = REFERENCE[name](text, wanted)
    raw = getattr(native, f"parse_{name}")(text, wanted)
    assert {j: (s.liveness.value, s.reason) for j, s in ref.items()} == raw
    assert getattr(lv, f"parse_{name}")(text, wanted) == ref  # the public, dispatching one
    return ref


# squeue -h -o '%i|%T|%r' (pending arrays collapse) and with -r (one line per task)
SQUEUE = """\
5_[1-9%1]|PENDING|JobArrayTaskLimit
336_[738-999%64]|PENDING|Resources
369_[0%64]|PENDING|Priority
336_706|RUNNING|None
4|RUNNING|None
6|RUNNING|None
"""
SQUEUE_R = "5_1|PENDING|JobArrayTaskLimit\n5_2|PENDING|JobArrayTaskLimit\n4|RUNNING|None\n"
SQUEUE_ALL = """\
4|CANCELLED|None
2|COMPLETED|None
5_0|COMPLETED|None
3|FAILED|NonZeroExitCode
5_[3-9%1]|PENDING|JobArrayTaskLimit
6|RUNNING|None
"""


def test_squeue_collapsed_and_expanded() -> None:
    wanted = {"5_3", "5_10", "336_706", "336_800", "336_1000", "369_0", "4", "7"}
    assert both("squeue", SQUEUE, wanted) == {
        "5_3": P,
        "336_706": R,
        "336_800": P,
        "369_0": P,
        "4": R,
    }
    assert both("squeue", SQUEUE_R, {"5_2", "4", "5_3"}) == {"5_2": P, "4": R}
    got = both("squeue", SQUEUE_ALL, {"4", "2", "5_0", "3", "5_9", "6"})
    assert got == {"4": F("CANCELLED"), "2": D, "5_0": D, "3": F("FAILED"), "5_9": P, "6": R}


def test_squeue_short_codes_and_list_ranges() -> None:
    text = "8_[1,3-5,10-20:5]|PD|x\n9|CG|\n10|OOM|\n11|S|\n12|WEIRD|\n13||\n"
    wanted = {"8_1", "8_2", "8_4", "8_15", "8_12", "9", "10", "11", "12", "13"}
    assert both("squeue", text, wanted) == {
        "8_1": P,
        "8_4": P,
        "8_15": P,
        "9": R,
        "10": F("OUT_OF_MEMORY"),
        "11": R,
        "12": P,
    }


def test_huge_collapsed_range_costs_what_is_wanted() -> None:
    text = "1_[0-999999999999999998%5]|PENDING|Priority\n"
    assert both("squeue", text, {"1_7", "1_999999999999999998", "2_7"}) == {
        "1_7": P,
        "1_999999999999999998": P,
    }


SACCT = """\
123_4|COMPLETED|0:0
123_4.batch|COMPLETED|0:0
123_4.extern|COMPLETED|0:0
124|CANCELLED by 0|0:15
125|OUT_OF_MEMORY|0:125
125.batch|OUT_OF_MEMORY|0:125
126|TIMEOUT|0:0
127|NODE_FAIL|1:0
128|PREEMPTED|0:0
129|RUNNING|0:0
130_[2-3]|PENDING|0:0
"""
# sacct -c -n -P -o JobID,State,ExitCode on jobcomp/filetxt (Slurm 22.05): array tasks
# appear under their raw job id (5_0 was job 7), with "Unknown type ArrayJobId" on stderr.
SACCT_C = "1|COMPLETED|0:0\n3|FAILED|3:0\n7|COMPLETED|0:0\n4|CANCELLED|0:0\n"
SACCT_C_COLUMNS = "1             COMPLETED      0:0 \n3                FAILED      3:0 \n"


def test_sacct() -> None:
    wanted = {"123_4", "124", "125", "126", "127", "128", "129", "130_3"}
    assert both("sacct", SACCT, wanted) == {
        "123_4": D,
        "124": F("CANCELLED"),
        "125": F("OUT_OF_MEMORY"),
        "126": F("TIMEOUT"),
        "127": F("NODE_FAIL"),
        "128": F("PREEMPTED"),
        "129": R,
        "130_3": P,
    }
    assert both("sacct", SACCT_C, {"1", "3", "7", "4"}) == {
        "1": D,
        "3": F("FAILED"),
        "7": D,
        "4": F("CANCELLED"),
    }
    assert both("sacct", SACCT_C_COLUMNS, {"1", "3"}) == {"1": D, "3": F("FAILED")}


QSTAT = """\
job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID 
-----------------------------------------------------------------------------------------------------------------
      2 0.50000 j.sh       root         r     11/24/2026 22:05:13 all.q@vm                           1 1
      2 0.00000 j.sh       root         qw    11/24/2026 22:05:13                                    1 2-6:1
      4 0.00000 j.sh       root         hqw   11/24/2026 22:05:13                                    1        
      7 0.50000 j.sh       root         Eqw   11/24/2026 22:05:13                                    1 3,5
      8 0.50000 j.sh       root         dr    11/24/2026 22:05:13 all.q@vm                           1
      9 0.50000 j.sh       root         t     11/24/2026 22:05:13 all.q@vm                           2 4
"""

QSTAT_XML = """\
<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>2</JB_job_number>
      <JAT_prio>0.50000</JAT_prio>
      <JB_name>j.sh</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-11-24T22:05:13</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
      <tasks>1</tasks>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>2</JB_job_number>
      <state>qw</state>
      <slots>1</slots>
      <tasks>2-6:1</tasks>
    </job_list>
    <job_list state="pending">
      <JB_job_number>4</JB_job_number>
      <state>hqw</state>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
  </job_info>
</job_info>
"""


def test_qstat_table_and_xml() -> None:
    wanted = {"2.1", "2.4", "2.7", "4", "7.5", "7.4", "8", "9.4", "2"}
    table = {"2.1": R, "2.4": P, "4": P, "7.5": F("Eqw"), "8": R, "9.4": R}
    assert both("qstat", QSTAT, wanted) == table
    assert both("qstat_xml", QSTAT_XML, wanted) == {"2.1": R, "2.4": P, "4": P}


QACCT = """\
==============================================================
qname        all.q               
jobnumber    3                   
taskid       undefined
failed       0    
exit_status  3                   
==============================================================
jobnumber    5                   
taskid       undefined
failed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit
exit_status  137                  (Killed)
==============================================================
jobnumber    2                   
taskid       1                   
failed       0    
exit_status  0                   
"""


def test_qacct() -> None:
    assert both("qacct", QACCT, {"3", "5", "2.1", "2.2"}) == {
        "3": D,
        "5": F("37 : qmaster enforced h_rt, h_cpu, or h_vmem limit"),
        "2.1": D,
    }


def test_ps() -> None:
    text = "    1 Ss\n  812 S+\n  813 Z+\n  900 R\n 901 X\n"
    assert both("ps", text, {"812", "813", "901", "4242"}) == {"812": R, "813": D, "901": D}


def test_empty_and_garbage_never_crash() -> None:
    for name in REFERENCE:
        for text in ["", "\n\n", "|||", "garbage", "<job_list>", "=====", "\x00\xff\u2028"]:
            assert both(name, text, {"1", "1_1", "1.1"}) == {}
