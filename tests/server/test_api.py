"""The REST API through the real app: resources, orchestration, idempotence, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from riverrun.server import create_app
from riverrun.server.security import MAX_BODY_BYTES
from riverrun.settings import get_settings, temporary_settings


def new_id() -> str:
    return str(uuid.uuid4())


def at(seconds: float = 0) -> str:
    return (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)).isoformat()


def make_flow_run(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {"id": new_id(), "name": "brave-otter", "flow_name": "etl", **fields}
    response = client.post("/api/flow_runs/", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def propose(client: TestClient, kind: str, run_id: str, state: str, **extra: Any) -> Any:
    return client.post(f"/api/{kind}/{run_id}/set_state", json={"state": {"type": state}, **extra})


def test_health_docs_and_openapi(client: TestClient) -> None:
    health = client.get("/api/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert client.get("/api/docs").status_code == 200
    spec = client.get("/api/openapi.json").json()
    for path in [
        "/api/flows/",
        "/api/flow_runs/",
        "/api/flow_runs/filter",
        "/api/flow_runs/{flow_run_id}",
        "/api/flow_runs/{flow_run_id}/set_state",
        "/api/task_runs/",
        "/api/task_runs/filter",
        "/api/task_runs/{task_run_id}",
        "/api/task_runs/{task_run_id}/set_state",
        "/api/logs/",
        "/api/logs/filter",
        "/api/events/batch",
    ]:
        assert path in spec["paths"], path


def test_flows_are_registered_once_by_name(client: TestClient) -> None:
    first = client.post("/api/flows/", json={"name": "etl"})
    again = client.post("/api/flows/", json={"name": "etl"})
    other = client.post("/api/flows/", json={"name": "report"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]


def test_flow_run_create_read_by_prefix_and_idempotent_create(client: TestClient) -> None:
    run = make_flow_run(client, parameters={"n": 3}, tags=["nightly"], state={"type": "PENDING"})
    assert run["state"]["type"] == "PENDING" and run["parameters"] == {"n": 3}
    assert client.get(f"/api/flow_runs/{run['id']}").json()["name"] == "brave-otter"
    assert client.get(f"/api/flow_runs/{run['id'][:8]}").json()["id"] == run["id"]
    repeat = client.post(
        "/api/flow_runs/", json={"id": run["id"], "name": "other", "flow_name": "etl"}
    )
    assert repeat.status_code == 200 and repeat.json()["name"] == "brave-otter"
    missing = client.get(f"/api/flow_runs/{new_id()}")
    assert missing.status_code == 404 and "No flow run with id" in missing.json()["detail"]


def test_transitions_follow_the_orchestration_rules(client: TestClient) -> None:
    run = make_flow_run(client, state={"type": "PENDING"})
    assert propose(client, "flow_runs", run["id"], "RUNNING").json()["run_count"] == 1
    done = propose(client, "flow_runs", run["id"], "COMPLETED").json()
    assert done["state"]["type"] == "COMPLETED" and done["end_time"] is not None

    refused = propose(client, "flow_runs", run["id"], "RUNNING")
    assert refused.status_code == 409
    assert refused.json()["current"] == "COMPLETED" and refused.json()["proposed"] == "RUNNING"
    assert "Cannot move from COMPLETED to RUNNING" in refused.json()["detail"]
    # Never half-written: neither the run nor its history moved.
    assert client.get(f"/api/flow_runs/{run['id']}").json()["state"]["type"] == "COMPLETED"
    history = client.get(f"/api/flow_runs/{run['id']}/states").json()
    assert [record["type"] for record in history] == ["PENDING", "RUNNING", "COMPLETED"]

    forced = propose(client, "flow_runs", run["id"], "RUNNING", force=True)
    assert forced.status_code == 200 and forced.json()["run_count"] == 2
    assert propose(client, "flow_runs", new_id(), "RUNNING").status_code == 404


def test_task_runs_create_filter_and_set_state(client: TestClient) -> None:
    run = make_flow_run(client)
    ids = []
    for key in range(3):
        body = {
            "id": new_id(),
            "name": f"add-{key}",
            "task_name": "add",
            "flow_run_id": run["id"],
            "dynamic_key": key,
            "created": at(key),
            "state": {"type": "PENDING"},
        }
        assert client.post("/api/task_runs/", json=body).status_code == 201
        assert client.post("/api/task_runs/", json=body).status_code == 200  # repeat
        ids.append(body["id"])
    page = client.post(
        "/api/task_runs/filter", json={"flow_run_id": run["id"], "limit": 2, "offset": 1}
    ).json()
    assert [task_run["id"] for task_run in page] == ids[1:]
    assert propose(client, "task_runs", ids[0], "RUNNING").status_code == 200
    assert propose(client, "task_runs", ids[0], "COMPLETED").status_code == 200
    assert propose(client, "task_runs", ids[0], "RUNNING").status_code == 409
    states = client.get(f"/api/task_runs/{ids[0]}/states").json()
    assert [record["type"] for record in states] == ["PENDING", "RUNNING", "COMPLETED"]
    assert client.get(f"/api/task_runs/{new_id()}").status_code == 404


def test_flow_run_filter_pages_and_sorts(client: TestClient) -> None:
    names = ["c-run", "a-run", "b-run"]
    for index, name in enumerate(names):
        make_flow_run(client, name=name, created=at(index), state={"type": "COMPLETED"})
    make_flow_run(client, name="d-run", flow_name="other", created=at(9))

    def names_of(**body: Any) -> list[str]:
        response = client.post("/api/flow_runs/filter", json=body)
        assert response.status_code == 200, response.text
        return [run["name"] for run in response.json()]

    assert names_of() == ["d-run", "b-run", "a-run", "c-run"]
    assert names_of(limit=2, offset=1) == ["b-run", "a-run"]
    assert names_of(sort="NAME_ASC", flow_name="etl") == ["a-run", "b-run", "c-run"]
    assert names_of(sort="CREATED_ASC", state_names=["completed"], limit=1) == ["c-run"]


def test_logs_are_recorded_once_and_filtered(client: TestClient) -> None:
    run = make_flow_run(client)
    lines = [
        {
            "id": new_id(),
            "flow_run_id": run["id"],
            "level": 20 if index % 2 else 40,
            "logger": "riverrun.flow",
            "message": f"line {index}",
            "timestamp": at(index),
        }
        for index in range(5)
    ]
    assert client.post("/api/logs/", json=lines).json() == {"received": 5, "new": 5}
    assert client.post("/api/logs/", json=lines[:2]).json() == {"received": 2, "new": 0}
    every = client.post("/api/logs/filter", json={"flow_run_id": run["id"]}).json()
    assert [line["message"] for line in every] == [f"line {i}" for i in range(5)]
    errors = client.post(
        "/api/logs/filter", json={"flow_run_id": run["id"], "level_at_least": 40, "offset": 1}
    ).json()
    assert [line["message"] for line in errors] == ["line 2", "line 4"]


def test_event_batches_are_idempotent_and_never_move_a_run_back(client: TestClient) -> None:
    run = make_flow_run(client, state={"type": "PENDING"})
    task_id = new_id()

    def state(type_: str, seconds: float, run_count: int) -> dict[str, Any]:
        return {
            "kind": "state",
            "id": new_id(),
            "run_id": task_id,
            "run_kind": "task",
            "state": {"type": type_, "timestamp": at(seconds)},
            "run_count": run_count,
            "start_time": at(1) if run_count else None,
        }

    first = [
        {
            "kind": "task_run",
            "run": {"id": task_id, "name": "t-1", "task_name": "t", "flow_run_id": run["id"]},
        },
        state("PENDING", 0, 0),
        state("RUNNING", 1, 1),
        {
            "kind": "log",
            "log": {
                "id": new_id(),
                "flow_run_id": run["id"],
                "task_run_id": task_id,
                "level": 20,
                "logger": "t",
                "message": "working",
                "timestamp": at(1),
            },
        },
    ]
    second = [state("COMPLETED", 2, 1)]
    assert client.post("/api/events/batch", json={"events": first}).json()["new"] == 4
    assert client.post("/api/events/batch", json={"events": second}).json()["new"] == 1
    # The first batch again (its answer was lost, say): nothing new, nothing moved back.
    assert client.post("/api/events/batch", json={"events": first}).json() == {
        "received": 4,
        "new": 0,
    }
    task_run = client.get(f"/api/task_runs/{task_id}").json()
    assert task_run["state"]["type"] == "COMPLETED" and task_run["run_count"] == 1
    states = client.post("/api/states/filter", json={"run_id": task_id}).json()
    assert [record["type"] for record in states] == ["PENDING", "RUNNING", "COMPLETED"]
    logs = client.post("/api/logs/filter", json={"task_run_id": task_id}).json()
    assert [line["message"] for line in logs] == ["working"]


def test_bad_input_gets_a_4xx_naming_the_problem_and_the_server_keeps_serving(
    client: TestClient,
) -> None:
    malformed = client.post(
        "/api/flow_runs/", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422 and "JSON" in malformed.text
    wrong_type = client.post(
        "/api/flow_runs/", json={"id": new_id(), "name": "x", "flow_name": "f", "run_count": "x"}
    )
    assert wrong_type.status_code == 422
    assert wrong_type.json()["detail"][0]["loc"] == ["body", "run_count"]
    unknown_field = client.post("/api/flow_runs/filter", json={"limt": 3})
    assert unknown_field.status_code == 422 and "limt" in unknown_field.text
    naive = make_flow_run(client)
    bad_time = client.post(
        f"/api/flow_runs/{naive['id']}/set_state",
        json={"state": {"type": "RUNNING", "timestamp": "2026-01-01T00:00:00"}},
    )
    assert bad_time.status_code == 422 and "timezone" in bad_time.text
    bad_state = propose(client, "flow_runs", naive["id"], "SLEEPING")
    assert bad_state.status_code == 422 and "SLEEPING" in bad_state.text
    far = client.post("/api/logs/filter", json={"offset": 2**63})
    assert far.status_code == 422 and far.json()["detail"][0]["loc"] == ["body", "offset"]
    too_long = client.post("/api/flows/", json={"name": "x" * 300})
    assert too_long.status_code == 422 and "255" in too_long.text
    huge = client.post(
        "/api/logs/",
        content=b"[" + b" " * (MAX_BODY_BYTES + 1) + b"]",
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]
    assert client.get("/api/health").status_code == 200


def test_the_page_lists_runs_with_everything_escaped(client: TestClient) -> None:
    make_flow_run(client, name="<script>alert(1)</script>", flow_name="f&<b>")
    page = client.get("/")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "f&amp;&lt;b&gt;" in page.text


def test_an_auth_string_guards_every_route_but_health(tmp_path: Path) -> None:
    with temporary_settings(database_url=f"sqlite:///{tmp_path / 'auth.db'}"):
        import os

        os.environ["RIVERRUN_SERVER_API_AUTH_STRING"] = "admin:s3cret-pass"
        try:
            app = create_app(get_settings())
        finally:
            del os.environ["RIVERRUN_SERVER_API_AUTH_STRING"]
    with TestClient(app) as client:
        assert client.get("/api/health").status_code == 200
        for method, path in [
            ("GET", "/"),
            ("GET", "/api/docs"),
            ("GET", "/api/openapi.json"),
            ("POST", "/api/flow_runs/filter"),
        ]:
            refused = client.request(method, path, json={})
            assert refused.status_code == 401, path
            assert "s3cret" not in refused.text
            wrong = client.request(method, path, json={}, auth=("admin", "guess"))
            assert wrong.status_code == 401, path
            right = client.request(method, path, json={}, auth=("admin", "s3cret-pass"))
            assert right.status_code == 200, path
    app.state.engine.dispose()


def test_a_heartbeat_refreshes_the_runs_named(client: TestClient) -> None:
    old = at(0)
    running = make_flow_run(client, state={"type": "RUNNING"}, heartbeat=old)
    other = make_flow_run(client, state={"type": "RUNNING"}, heartbeat=old)
    answer = client.post("/api/flow_runs/heartbeat", json={"ids": [running["id"]]})
    assert answer.status_code == 200 and answer.json() == {"ids": [running["id"]]}
    beat = client.get(f"/api/flow_runs/{running['id']}").json()["heartbeat"]
    assert datetime.fromisoformat(beat) > datetime.now(UTC) - timedelta(minutes=5)
    untouched = client.get(f"/api/flow_runs/{other['id']}").json()["heartbeat"]
    assert datetime.fromisoformat(untouched) == datetime.fromisoformat(old)
