"""Request and response bodies of the REST API, with the limits every field keeps.

The HTTP store (``riverrun.store.http``) speaks the same JSON without importing these:
the client stays free of pydantic on its hot path, and ``tests/server`` checks the two
agree by running the store's contract suite against the server.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from riverrun.states import State, StateType
from riverrun.store.protocol import CacheEntry, FlowRun, LogEntry, StateRecord, TaskRun

# Limits: a run name, a tag, an id. Large enough for any real run, small enough that a
# single request cannot fill the database.
Id = Annotated[str, StringConstraints(min_length=1, max_length=36)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Tag = Annotated[str, StringConstraints(max_length=255)]
Message = Annotated[str, StringConstraints(max_length=100_000)]
TaskKey = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Tags = Annotated[list[Tag], Field(max_length=100)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
MAX_PAGE = 1000
MAX_BATCH = 5000
MAX_OFFSET = 2**31 - 1


class Body(BaseModel):
    """Unknown fields are refused, so a misspelt field is an error and not ignored."""

    model_config = ConfigDict(extra="forbid")


class StateIn(Body):
    type: StateType
    name: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    message: Message | None = None
    timestamp: AwareDatetime | None = None

    def to_state(self) -> State:
        return State(self.type, self.name, message=self.message, timestamp=self.timestamp)


class StateOut(BaseModel):
    type: StateType
    name: str
    message: str | None
    timestamp: AwareDatetime | None = None

    @classmethod
    def of(cls, state: State | None) -> StateOut | None:
        if state is None:
            return None
        return cls(type=state.type, name=state.name, message=state.message)


class FlowCreate(Body):
    name: Name


class FlowOut(BaseModel):
    id: str
    name: str
    created: AwareDatetime


class FlowRunCreate(Body):
    id: Id
    name: Name
    flow_name: Name
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: Tags = Field(default_factory=list)
    parent_flow_run_id: Id | None = None
    parent_task_run_id: Id | None = None
    state: StateIn | None = None
    run_count: Count = 0
    created: AwareDatetime | None = None
    start_time: AwareDatetime | None = None
    end_time: AwareDatetime | None = None
    hostname: Name | None = None
    pid: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    heartbeat: AwareDatetime | None = None
    entrypoint: Message | None = None
    resume_parameters: Message | None = None

    def to_run(self) -> FlowRun:
        values = self.model_dump(exclude={"state"})
        return FlowRun(**values, state=self.state.to_state() if self.state else None)


class FlowRunOut(BaseModel):
    id: str
    name: str
    flow_name: str
    parameters: dict[str, Any]
    tags: list[str]
    parent_flow_run_id: str | None
    parent_task_run_id: str | None
    state: StateOut | None
    run_count: int
    created: AwareDatetime | None
    start_time: AwareDatetime | None
    end_time: AwareDatetime | None
    hostname: str | None
    pid: int | None
    heartbeat: AwareDatetime | None
    entrypoint: str | None = None
    resume_parameters: str | None = None

    @classmethod
    def of(cls, run: FlowRun) -> FlowRunOut:
        return cls(
            id=run.id,
            name=run.name,
            flow_name=run.flow_name,
            parameters=run.parameters,
            tags=run.tags,
            parent_flow_run_id=run.parent_flow_run_id,
            parent_task_run_id=run.parent_task_run_id,
            state=StateOut.of(run.state),
            run_count=run.run_count,
            created=run.created,
            start_time=run.start_time,
            end_time=run.end_time,
            hostname=run.hostname,
            pid=run.pid,
            heartbeat=run.heartbeat,
            entrypoint=run.entrypoint,
            resume_parameters=run.resume_parameters,
        )


class TaskRunCreate(Body):
    id: Id
    name: Name
    task_name: Name
    flow_run_id: Id | None = None
    dynamic_key: Count = 0
    tags: Tags = Field(default_factory=list)
    state: StateIn | None = None
    run_count: Count = 0
    created: AwareDatetime | None = None
    start_time: AwareDatetime | None = None
    end_time: AwareDatetime | None = None
    cache_key: Name | None = None
    upstream_task_run_ids: Annotated[list[Id], Field(max_length=10_000)] = Field(
        default_factory=list
    )
    subflow_run_id: Id | None = None
    task_key: TaskKey | None = None
    result: Message | None = None

    def to_run(self) -> TaskRun:
        values = self.model_dump(exclude={"state"})
        return TaskRun(**values, state=self.state.to_state() if self.state else None)


class TaskRunOut(BaseModel):
    id: str
    name: str
    task_name: str
    flow_run_id: str | None
    dynamic_key: int
    tags: list[str]
    state: StateOut | None
    run_count: int
    created: AwareDatetime | None
    start_time: AwareDatetime | None
    end_time: AwareDatetime | None
    cache_key: str | None
    upstream_task_run_ids: list[str]
    subflow_run_id: str | None
    task_key: str | None = None
    result: str | None = None

    @classmethod
    def of(cls, run: TaskRun) -> TaskRunOut:
        return cls(
            id=run.id,
            name=run.name,
            task_name=run.task_name,
            flow_run_id=run.flow_run_id,
            dynamic_key=run.dynamic_key,
            tags=run.tags,
            state=StateOut.of(run.state),
            run_count=run.run_count,
            created=run.created,
            start_time=run.start_time,
            end_time=run.end_time,
            cache_key=run.cache_key,
            upstream_task_run_ids=run.upstream_task_run_ids,
            subflow_run_id=run.subflow_run_id,
            task_key=run.task_key,
            result=run.result,
        )


class SetStateRequest(Body):
    """Propose a state; the orchestration rules decide unless ``force`` is true."""

    state: StateIn
    force: bool = False
    event_id: Id | None = None


class StateRecordOut(BaseModel):
    run_id: str
    type: str
    name: str
    message: str | None
    timestamp: AwareDatetime

    @classmethod
    def of(cls, record: StateRecord) -> StateRecordOut:
        return cls(
            run_id=record.run_id,
            type=record.type,
            name=record.name,
            message=record.message,
            timestamp=record.timestamp,
        )


class FlowRunFilter(Body):
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 200
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0
    sort: Literal["CREATED_DESC", "CREATED_ASC", "NAME_ASC", "NAME_DESC"] = "CREATED_DESC"
    state_names: Annotated[list[Name], Field(max_length=50)] | None = None
    flow_name: Name | None = None


class TaskRunFilter(Body):
    flow_run_id: Id | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 200
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0


class LogIn(Body):
    id: Id
    flow_run_id: Id | None = None
    task_run_id: Id | None = None
    level: Annotated[int, Field(ge=0, le=100)]
    logger: Name
    message: Message
    timestamp: AwareDatetime

    def to_entry(self) -> LogEntry:
        return LogEntry(
            flow_run_id=self.flow_run_id,
            task_run_id=self.task_run_id,
            level=self.level,
            logger=self.logger,
            message=self.message,
            timestamp=self.timestamp,
        )


class LogOut(BaseModel):
    flow_run_id: str | None
    task_run_id: str | None
    level: int
    logger: str
    message: str
    timestamp: AwareDatetime

    @classmethod
    def of(cls, entry: LogEntry) -> LogOut:
        return cls(
            flow_run_id=entry.flow_run_id,
            task_run_id=entry.task_run_id,
            level=entry.level,
            logger=entry.logger,
            message=entry.message,
            timestamp=entry.timestamp,
        )


class LogFilter(Body):
    flow_run_id: Id | None = None
    task_run_id: Id | None = None
    level_at_least: Annotated[int, Field(ge=0, le=100)] = 0
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 200
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0


class StateFilter(Body):
    run_id: Id


class FlowRunEvent(Body):
    kind: Literal["flow_run"]
    run: FlowRunCreate


class TaskRunEvent(Body):
    kind: Literal["task_run"]
    run: TaskRunCreate


class StateEventIn(Body):
    """A state the client's engine already checked, with the run's columns after it."""

    kind: Literal["state"]
    id: Id
    run_id: Id
    run_kind: Literal["flow", "task"]
    state: StateIn
    run_count: Count
    start_time: AwareDatetime | None = None
    end_time: AwareDatetime | None = None
    # A task run's persisted result and cache key, known once it started (task only).
    result: Message | None = None
    cache_key: Name | None = None


class LogEvent(Body):
    kind: Literal["log"]
    log: LogIn


Event = Annotated[
    FlowRunEvent | TaskRunEvent | StateEventIn | LogEvent, Field(discriminator="kind")
]


class EventBatchIn(Body):
    events: Annotated[list[Event], Field(max_length=MAX_BATCH)]


class AcceptedOut(BaseModel):
    received: int
    new: int


class IdsIn(Body):
    ids: Annotated[list[Id], Field(max_length=MAX_BATCH)]


class IdsOut(BaseModel):
    ids: list[str]


class CacheKeyIn(Body):
    key: Name


class CacheEntryIO(Body):
    key: Name
    location: Message
    expiration: AwareDatetime | None
    created: AwareDatetime
    task_name: Name | None = None

    def to_entry(self) -> CacheEntry:
        return CacheEntry(
            key=self.key,
            location=self.location,
            expiration=self.expiration,
            created=self.created,
            task_name=self.task_name,
        )

    @classmethod
    def of(cls, entry: CacheEntry) -> CacheEntryIO:
        return cls(
            key=entry.key,
            location=entry.location,
            expiration=entry.expiration,
            created=entry.created,
            task_name=entry.task_name,
        )


class CacheDeleteIn(Body):
    """Which entries to delete: a task's, one key, both filters, or (neither) all."""

    task_name: Name | None = None
    key: Name | None = None


class FlowRunRestartIn(Body):
    """The next attempt of a flow run that ended without completing (a resume)."""

    state: StateIn
    hostname: Name | None = None
    pid: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None


class RestartOut(BaseModel):
    moved: bool


class HealthOut(BaseModel):
    status: Literal["ok"]
    database: str


class ErrorOut(BaseModel):
    detail: Any
