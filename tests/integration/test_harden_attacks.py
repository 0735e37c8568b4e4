"""A hostile client against the real server (REST on a socket, gRPC, control API): each class of attack the
hardening issue found, answered with a 4xx JSON error (or a gRPC status) from maas, never a 500 or a hang."""

from __future__ import annotations

import pickle
from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


class WritesAFile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},  # what a browser sends for a page's form
    {},  # the same form, as a script without browser headers would send it
    {"X-Requested-With": "x"},  # not cross-site, but trust is still never granted without an admin key
])
def test_cross_site_pickle_upload_runs_nothing(http, tmp_path: Path, headers: dict[str, str]) -> None:
    marker = tmp_path / "pwned.txt"
    r = http.post("/api/v1/models/x/versions", data={"trust": "true"}, headers=headers,
                  files={"file": ("model.pkl", pickle.dumps(WritesAFile(marker)), "application/octet-stream")})
    assert r.status_code == 403 and r.json()["error"], r.text
    assert r.headers["x-request-id"]
    assert not marker.exists()
    assert http.get("/api/v1/models/x").status_code == 404


def test_cross_site_state_changes_are_refused(http) -> None:
    evil = {"Origin": "http://evil.example"}
    assert http.post("/v2/repository/models/linear/unload", headers=evil).status_code == 403
    assert http.post("/api/v1/versions/linear:1/archive", headers=evil).status_code == 403
    assert http.post("/api/v1/versions/linear:1/archive").status_code == 403  # no custom header
    assert http.post("/api/v1/jobs", json={"kind": "evaluate", "params": {}}, headers=evil).status_code == 403
    assert http.get("/v2/models/linear/ready").status_code == 200
