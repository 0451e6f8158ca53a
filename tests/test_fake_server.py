"""The loopback fake server the API fakes are built on: routing, records and faults."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.server import FakeRequest, FakeResponse, FakeServer


def echo(req: FakeRequest) -> FakeResponse:
    return FakeResponse.json({"id": req.params["id"], "q": req.arg("q"), "body": req.json()})


@pytest.fixture
def fake():
    with FakeServer() as srv:
        srv.route("POST", r"/items/(?P<id>\d+)", echo)
        yield srv


def test_routes_and_records(fake: FakeServer) -> None:
    r = httpx.post(f"{fake.url}/items/7?q=x", json={"a": 1})
    assert r.status_code == 200
    assert r.json() == {"id": "7", "q": "x", "body": {"a": 1}}
    assert len(fake.requests_to("POST", r"/items/\d+")) == 1
    assert httpx.get(f"{fake.url}/nope").status_code == 404


def test_faults_are_served_first_then_cleared(fake: FakeServer) -> None:
    fake.fail("POST", r"/items/.*", FakeResponse.json({}, 429, {"Retry-After": "1"}), times=2)
    codes = [httpx.post(f"{fake.url}/items/1", json={}).status_code for _ in range(3)]
    assert codes == [429, 429, 200]


def test_delay_and_drop(fake: FakeServer) -> None:
    fake.fail("POST", r"/items/.*", delay=1.0)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{fake.url}/items/1", json={}, timeout=0.2)
    fake.fail("POST", r"/items/.*", drop=True)
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{fake.url}/items/1", json={})
