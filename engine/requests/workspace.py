"""The requests of the commands on the runs database and the workspace: ``runs``, ``tag``, ``report``,
``import``, the demo, ``config``, ``model-summary``."""

from __future__ import annotations

from dataclasses import dataclass

from engine.requests.base import Request


@dataclass(frozen=True, kw_only=True)
class RunsRequest(Request):
    """``spkemb-engine runs``."""

    status: str | None = None
    kind: str | None = None
    group: str | None = None
    tag: str | None = None
    format: str = "table"
    stale: bool = False
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class TagRequest(Request):
    """``spkemb-engine tag``."""

    run_id: int
    group: str | None = None
    add_tag: tuple[str, ...] | None = None
    remove_tag: tuple[str, ...] | None = None
    note: str | None = None
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReportRequest(Request):
    """``spkemb-engine report``: the comparison of runs (one system each) and groups as files."""

    run_id: tuple[int, ...] = ()
    group: tuple[str, ...] | None = None
    out: str
    #: what to write (latex, csv, markdown, png, svg, pdf, html; repeatable); None: all of them
    format: tuple[str, ...] | None = None
    #: write into a folder that is not empty (the report's files are replaced, the others kept)
    force: bool = False
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class ImportRequest(Request):
    """``spkemb-engine import``."""

    paths: tuple[str, ...]
    db: str | None = None


@dataclass(frozen=True, kw_only=True)
class DemoRequest(Request):
    """``spkemb-engine demo-data`` and ``demo-workspace``."""

    dir: str
    speakers: int = 60
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class ConfigCheckRequest(Request):
    """``spkemb-engine config check``."""

    file: str


@dataclass(frozen=True, kw_only=True)
class ConfigTemplateRequest(Request):
    """``spkemb-engine config template``."""

    name: str


@dataclass(frozen=True, kw_only=True)
class ConfigLargeMarginRequest(Request):
    """``spkemb-engine config large-margin``."""

    parent: str


@dataclass(frozen=True, kw_only=True)
class ModelSummaryRequest(Request):
    """``spkemb-engine model-summary``."""

    config: str
