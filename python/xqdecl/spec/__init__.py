"""The spec: loading, validation (with file:line:col errors) and expansion.

```python
from xqdecl.spec import load_spec, expand, count_jobs, render_job
spec = load_spec("pipeline.toml")          # SpecError on any problem
for job in expand(spec):                   # lazily, in global index order
    rendered = render_job(spec, job)       # name, cmd, env, cwd, scripts filled in
```
"""

from __future__ import annotations

from typing import Any

from xqdecl.spec.expand import (
    ExpandedJob,
    RenderedJob,
    count_jobs,
    expand,
    group_counts,
    job_at,
    render_all,
    render_job,
)
from xqdecl.spec.loader import load_spec, loads_spec, spec_from_dict
from xqdecl.spec.models import GroupSettings, JobGroup, RangeSpec, Spec
from xqdecl.spec.schedulers import (
    SCHEDULER_MODELS,
    ContainerOptions,
    GbatchOptions,
    LocalOptions,
    SchedulerBase,
    SchedulerOptions,
    SgeOptions,
    SlurmOptions,
    SshOptions,
    SshServer,
)
from xqdecl.spec.template import Template, TemplateError

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (what `xqdecl schema` prints)."""
    schema = Spec.model_json_schema(mode="validation")
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["title"] = "xqdecl spec"
    return schema


__all__ = [
    "SCHEDULER_MODELS",
    "ContainerOptions",
    "ExpandedJob",
    "GbatchOptions",
    "GroupSettings",
    "JobGroup",
    "LocalOptions",
    "RangeSpec",
    "RenderedJob",
    "SchedulerBase",
    "SchedulerOptions",
    "SgeOptions",
    "SlurmOptions",
    "Spec",
    "SshOptions",
    "SshServer",
    "Template",
    "TemplateError",
    "count_jobs",
    "expand",
    "group_counts",
    "job_at",
    "json_schema",
    "load_spec",
    "loads_spec",
    "render_all",
    "render_job",
    "spec_from_dict",
]
