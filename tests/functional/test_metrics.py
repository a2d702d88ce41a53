"""`GET /metrics` over real HTTP: Prometheus text, request counters, queue depth from the jobs table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from postroom.clock import utcnow
from postroom.db import tables as t
from tests.conftest import Api


async def _scrape(http: aiohttp.ClientSession, base: str, **headers: str) -> dict[str, Any]:
    async with http.get(base + "/metrics", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        text = await response.text()
    samples: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return float(samples.get((name, tuple(sorted(labels.items()))), 0.0))


async def test_requests_are_counted_by_route_template_and_status(
    server: Any, admin: Api, http: aiohttp.ClientSession
) -> None:
    """Requests show up under their route template (not the raw path) and status code."""
    name = "postroom_http_requests_total"
    route = "/api/v1/users/{id}"
    before = await _scrape(http, server.base)
    await admin.get("/users/1", expect=200)
    await admin.get("/users/1", expect=200)
    status, _ = await admin.get("/users/999999")
    after = await _scrape(http, server.base)
    ok = {"route": route, "method": "GET", "status": "200"}
    assert _value(after, name, **ok) - _value(before, name, **ok) == 2
    missing = {"route": route, "method": "GET", "status": str(status)}
    assert _value(after, name, **missing) - _value(before, name, **missing) >= 1
    assert not any("999999" in str(key) for key in after)
    assert (
        "postroom_http_request_duration_seconds_count",
        (("method", "GET"), ("route", route)),
    ) in after


async def test_unknown_paths_share_one_series(
    server: Any, anon: Api, http: aiohttp.ClientSession
) -> None:
    """Requests to unknown paths are counted under route="unmatched", never under their path."""
    for i in range(3):
        await anon.get(f"/no-such-thing-{i}")
    samples = await _scrape(http, server.base)
    labels = {"route": "unmatched", "method": "GET", "status": "404"}
    assert _value(samples, "postroom_http_requests_total", **labels) >= 3
    assert not any("no-such-thing" in str(key) for key in samples)


async def test_queue_depth_is_read_from_the_jobs_table(
    server: Any, http: aiohttp.ClientSession
) -> None:
    """Queued jobs in the database (from any instance) are reported as queue depth and oldest age."""
    # No worker handles this kind, so the rows stay queued; one has been due for ten minutes.
    due_times = [utcnow() - timedelta(minutes=10), utcnow(), utcnow() + timedelta(hours=1)]
    async with server.service.runtime.db.transaction() as conn:
        for run_after in due_times:
            await conn.execute(
                t.jobs.insert().values(
                    kind="metrics_probe",
                    payload={},
                    status="queued",
                    attempts=0,
                    run_after=run_after,
                    created_at=utcnow(),
                )
            )
    samples = await _scrape(http, server.base)
    assert _value(samples, "postroom_pipeline_queue_depth", kind="metrics_probe") == 3
    assert _value(samples, "postroom_pipeline_oldest_queued_age_seconds") >= 600
    async with server.service.runtime.db.transaction() as conn:
        await conn.execute(t.jobs.delete().where(t.jobs.c.kind == "metrics_probe"))
    samples = await _scrape(http, server.base)
    assert _value(samples, "postroom_pipeline_queue_depth", kind="metrics_probe") == 0


async def test_every_metric_of_the_issue_is_exposed(
    server: Any, http: aiohttp.ClientSession
) -> None:
    """The scrape lists the metric families the dashboards rely on, even before any traffic."""
    async with http.get(server.base + "/metrics") as response:
        text = await response.text()
    families = {family.name for family in text_string_to_metric_families(text)}
    for name in (
        "postroom_http_requests",
        "postroom_upload_bytes",
        "postroom_smtp_sessions",
        "postroom_smtp_replies",
        "postroom_smtp_messages",
        "postroom_pipeline_queue_depth",
        "postroom_pipeline_import_latency_seconds",
        "postroom_pipeline_job_failures",
        "postroom_rate_limited",
    ):
        assert name in families, name


async def test_metrics_token_is_required_when_configured(
    server_factory: Any, http: aiohttp.ClientSession
) -> None:
    """With metrics.token set, a scrape without that bearer token gets 401, with it 200."""
    server = await server_factory(POSTROOM_METRICS_TOKEN="scrape-secret")
    async with http.get(server.base + "/metrics") as response:
        assert response.status == 401
        assert (await response.json())["code"] == "authentication_failed"
    async with http.get(
        server.base + "/metrics", headers={"Authorization": "Bearer wrong"}
    ) as response:
        assert response.status == 401
    await _scrape(http, server.base, Authorization="Bearer scrape-secret")


async def test_metrics_can_be_disabled(server_factory: Any, http: aiohttp.ClientSession) -> None:
    """metrics.enabled = false answers 404 at /metrics."""
    server = await server_factory(POSTROOM_METRICS_ENABLED="false")
    async with http.get(server.base + "/metrics") as response:
        assert response.status == 404


async def test_http_upload_bytes_are_counted(
    server: Any, admin: Api, http: aiohttp.ClientSession
) -> None:
    """An accepted upload adds at least its file size to the http upload bytes counter."""
    before = await _scrape(http, server.base)
    form = aiohttp.FormData()
    form.add_field("content", b"Invoice 7\n" * 300, filename="seven.txt")
    status, body = await admin.post("/queues/1/upload", data=form)
    assert status == 201, body
    after = await _scrape(http, server.base)
    name = "postroom_upload_bytes_total"
    grown = _value(after, name, channel="http") - _value(before, name, channel="http")
    assert 3000 <= grown < 4000
    requests = "postroom_upload_requests_total"
    assert _value(after, requests, channel="http") - _value(before, requests, channel="http") == 1
