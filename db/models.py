"""SQLAlchemy 2.0 models: the whole persistent state of Tuneboard.

Job state lives here and only here, so a closed browser or a restarted app loses nothing.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Times are written in UTC; SQLite hands them back without a zone."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class RunStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    interrupted = "interrupted"

    @property
    def finished(self) -> bool:
        return self in (RunStatus.completed, RunStatus.failed, RunStatus.cancelled, RunStatus.interrupted)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task: Mapped[str] = mapped_column(String(40))
    format: Mapped[str] = mapped_column(String(40))
    num_rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[str]] = mapped_column(JSON)
    splits: Mapped[dict[str, int]] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
    source_file: Mapped[str] = mapped_column(String(500))
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A dataset used by runs is never changed in place: a change makes version N+1 whose parent is this row.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    runs: Mapped[list[Run]] = relationship(back_populates="dataset")

    def __repr__(self) -> str:
        return f"<Dataset {self.id} {self.name!r} rows={self.num_rows}>"


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_status_priority_id", "status", "priority", "id"),)  # the queue's order

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[RunStatus] = mapped_column(
        Enum(RunStatus, name="run_status", native_enum=False, length=20), default=RunStatus.queued, index=True
    )
    task: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(300))
    method: Mapped[str] = mapped_column(String(40))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # higher starts first
    devices: Mapped[str | None] = mapped_column(String(100))  # "cpu", "cuda:0", "cuda:0,1"; None: any free slot
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))  # resumed/cloned from
    study_id: Mapped[int | None] = mapped_column(ForeignKey("studies.id", ondelete="SET NULL"), index=True)
    trial_number: Mapped[int | None] = mapped_column(Integer)
    # set while the run waits for its model's download (the supervisor starts it once this is cleared)
    download_id: Mapped[int | None] = mapped_column(ForeignKey("downloads.id", ondelete="SET NULL"))
    # where it executes: "local" (a process of this machine, torchrun for several GPUs) or "ray" (a job of
    # the Ray cluster, whose submission id is cluster_job_id), and how many training workers it uses
    executor: Mapped[str] = mapped_column(String(20), default="local", server_default="local")
    cluster_job_id: Mapped[str | None] = mapped_column(String(200))
    workers: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    pid: Mapped[int | None] = mapped_column(Integer)
    pid_started_at: Mapped[float | None] = mapped_column(Float)  # process start time, guards against pid reuse
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int] = mapped_column(Integer, default=0)
    epoch: Mapped[float] = mapped_column(Float, default=0.0)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    dataset: Mapped[Dataset | None] = relationship(back_populates="runs")
    points: Mapped[list[MetricPoint]] = relationship(back_populates="run", cascade="all, delete-orphan")
    artifacts: Mapped[list[Artifact]] = relationship(back_populates="run", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<Run {self.id} {self.status.value} {self.method} {self.model!r}>"


class Study(Base):
    """A hyperparameter search: its trials are ordinary runs with `study_id` set."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued, running, completed, stopped, failed
    task: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(300))
    method: Mapped[str] = mapped_column(String(40))
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # base settings, space, sampler, metric, direction, budget
    best_run_id: Mapped[int | None] = mapped_column(Integer)
    best_value: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"<Study {self.id} {self.status} {self.name!r}>"


class MetricPoint(Base):
    __tablename__ = "metric_points"
    __table_args__ = (Index("ix_metric_points_run_name_step", "run_id", "name", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(60))
    value: Mapped[float] = mapped_column(Float)

    run: Mapped[Run] = relationship(back_populates="points")

    def __repr__(self) -> str:
        return f"<MetricPoint run={self.run_id} {self.name}@{self.step}={self.value:.4g}>"


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))  # adapter, merged, checkpoint, zip
    path: Mapped[str] = mapped_column(String(500))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    verification: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    run: Mapped[Run] = relationship(back_populates="artifacts")

    def __repr__(self) -> str:
        return f"<Artifact {self.id} run={self.run_id} {self.kind} {self.size_bytes}B>"


class Download(Base):
    """A model fetched from a hub in a background process (backend/models/fetch.py), like a run."""

    __tablename__ = "downloads"

    id: Mapped[int] = mapped_column(primary_key=True)
    repo_id: Mapped[str] = mapped_column(String(300), index=True)
    revision: Mapped[str] = mapped_column(String(200), default="")  # "": the hub's default branch
    hub: Mapped[str] = mapped_column(String(20), default="hf")  # hf (or a mirror: HF_ENDPOINT), modelscope
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued, running, completed, failed, cancelled
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)  # 0 while unknown
    speed: Mapped[float] = mapped_column(Float, default=0.0)  # bytes per second, recent
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    path: Mapped[str | None] = mapped_column(String(500))  # the snapshot folder, once completed
    reason: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    pid_started_at: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"<Download {self.id} {self.status} {self.repo_id!r}>"


class Evaluation(Base):
    """Models scored on suites in a background process (backend/evaluate/worker.py), like a run."""

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued, running, completed, failed, cancelled
    models: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"ref": "run:3", "label": ...}]
    suites: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"name", "kind", "metric", "path"}]
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # fewshot, limit
    results: Mapped[list[Any]] = mapped_column(JSON, default=list)  # one per (model, suite) scored so far
    done: Mapped[int] = mapped_column(Integer, default=0)  # samples scored
    total: Mapped[int] = mapped_column(Integer, default=0)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)  # after a run
    reason: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)
    pid_started_at: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # processes started (a vanished one is restarted)
    executor: Mapped[str] = mapped_column(String(20), default="local", server_default="local")  # local or ray
    cluster_job_id: Mapped[str | None] = mapped_column(String(200))  # its Ray job (executor ray)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"<Evaluation {self.id} {self.status}>"


class EvalSample(Base):
    """One scored sample of an evaluation: a model's answer to one prompt of one suite."""

    __tablename__ = "eval_samples"
    __table_args__ = (Index("ix_eval_samples_evaluation_model_suite", "evaluation_id", "model", "suite"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"))
    model: Mapped[str] = mapped_column(String(300))
    suite: Mapped[str] = mapped_column(String(300))
    index: Mapped[int] = mapped_column(Integer)  # the sample's row in the suite
    prompt: Mapped[str] = mapped_column(Text, default="")
    reference: Mapped[str] = mapped_column(Text, default="")
    answer: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[float] = mapped_column(Float, default=0.0)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # log-likelihoods, judge's reason
