"""`xqdecl init`: a commented starter spec (TOML or YAML, by the file's suffix)."""

from __future__ import annotations

import json
from pathlib import Path

from xqdecl.errors import ExitCode, XqdeclError

SCHEMA_FILE = "xqdecl.schema.json"


class InitError(XqdeclError):
    """The starter spec cannot be written there (usage error: exit 2)."""

    exit_code = ExitCode.USAGE

_TOML = """\
# A starter xqdecl spec: `xqdecl run {file}` runs its jobs on this machine.
# Every key below is explained in docs/guide.md; `xqdecl schema` prints them all.
# Relative paths resolve against this file's folder, from any current directory.

# name = "my-run"           # run name: [A-Za-z0-9_.-]+ (default: this file's stem)
workdir = ".xqdecl"         # where run state, logs and report.html go
forks = 4                   # most jobs in flight at once
error_strategy = "retry"    # ignore | retry | halt
num_retries = 1             # extra attempts per job when error_strategy = "retry"
# timeout = "1h"            # per job: seconds, or "90s", "10m", "2h", "1d", "1h30m"
# prescript = "module load python"   # shell run before each job's command
# postscript = "echo finished"       # shell run after it, whatever the outcome
# cwd = "."                 # each job's working directory
# plugins = ["mypkg.notify"]         # modules with @xqdecl.plugin.impl hooks

[env]                       # exported in every job
GREETING = "hello"

# [scheduler]               # default: local (jobs run on this machine)
# type = "slurm"            # local | slurm | sge | ssh | container | gbatch
# partition = "short"
# mem = "4G"

[[jobs]]                    # a group of jobs: one command over a parameter matrix
name = "greet-{{who}}-{{n}}"   # unique after expansion; {{param}} placeholders
# a list is passed as argv, exactly as written; a string runs in bash (values quoted)
cmd = ["sh", "-c", 'echo "$GREETING, $0 (job $XQDECL_JOB_INDEX)"', "{{who}}"]
matrix = {{ who = ["world", "xqdecl"], n = {{ range = [1, 3] }} }}   # 2 x 2 = 4 jobs
# env = {{ WHO = "{{who}}" }}    # per-group environment
# timeout = "5m"              # any run-level job setting may be overridden per group

# [[jobs]]                  # another group: one job per row of a CSV/TSV file
# name = "sample-{{id}}"
# params_file = "samples.tsv"
# cmd = "process {{id}} {{path}} > out/{{id}}.txt"
"""

_YAML = """\
# A starter xqdecl spec: `xqdecl run {file}` runs its jobs on this machine.
# Every key below is explained in docs/guide.md; `xqdecl schema` prints them all.
# Relative paths resolve against this file's folder, from any current directory.

# name: my-run              # run name: [A-Za-z0-9_.-]+ (default: this file's stem)
workdir: .xqdecl            # where run state, logs and report.html go
forks: 4                    # most jobs in flight at once
error_strategy: retry       # ignore | retry | halt
num_retries: 1              # extra attempts per job when error_strategy is retry
# timeout: 1h               # per job: seconds, or 90s, 10m, 2h, 1d, 1h30m
# prescript: module load python     # shell run before each job's command
# postscript: echo finished         # shell run after it, whatever the outcome
# cwd: .                    # each job's working directory
# plugins: [mypkg.notify]   # modules with @xqdecl.plugin.impl hooks

env:                        # exported in every job
  GREETING: hello

# scheduler:                # default: local (jobs run on this machine)
#   type: slurm             # local | slurm | sge | ssh | container | gbatch
#   partition: short
#   mem: 4G

jobs:
  - name: "greet-{{who}}-{{n}}"  # unique after expansion; {{param}} placeholders
    # a list is passed as argv, exactly as written; a string runs in bash (values quoted)
    cmd: [sh, -c, 'echo "$GREETING, $0 (job $XQDECL_JOB_INDEX)"', "{{who}}"]
    matrix:                 # 2 x 2 = 4 jobs
      who: [world, xqdecl]
      n: {{range: [1, 3]}}
    # env: {{WHO: "{{who}}"}}   # per-group environment
    # timeout: 5m           # any run-level job setting may be overridden per group

  # - name: "sample-{{id}}"  # another group: one job per row of a CSV/TSV file
  #   params_file: samples.tsv
  #   cmd: "process {{id}} {{path}} > out/{{id}}.txt"
"""


def starter_text(path: Path, schema_ref: str | None = None) -> str:
    """The starter spec for `path` (YAML for .yaml/.yml, TOML otherwise)."""
    yaml = path.suffix.lower() in (".yaml", ".yml")
    text = (_YAML if yaml else _TOML).format(file=path.name)
    if schema_ref:
        directive = (f"# yaml-language-server: $schema={schema_ref}" if yaml
                     else f"#:schema {schema_ref}")
        text = f"{directive}\n{text}"
    return text


def write_starter(path: str | Path, *, with_schema: bool = False) -> list[Path]:
    """Write a starter spec at `path` (never over an existing file); with
    `with_schema`, also write the JSON Schema beside it and point the editor
    directive at it. Returns the files written."""
    from xqdecl.spec import json_schema

    target = Path(path)
    if target.exists():
        raise InitError(f"{target} already exists: not overwriting it (pick another path)")
    if not target.parent.is_dir():
        raise InitError(f"{target.parent} is not a folder")
    written = []
    ref = None
    if with_schema:
        schema_path = target.parent / SCHEMA_FILE
        schema_path.write_text(json.dumps(json_schema(), indent=2) + "\n", encoding="utf-8")
        written.append(schema_path)
        ref = f"./{SCHEMA_FILE}"
    with open(target, "x", encoding="utf-8") as fh:
        fh.write(starter_text(target, ref))
    written.insert(0, target)
    return written
