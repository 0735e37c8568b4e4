"""HTTPS and gRPC over TLS on the same ports, then mTLS, with real clients: curl, tritonclient.http,
tritonclient.grpc and the Python SDK. Plain-text clients are refused on TLS ports; under mTLS a client
without a certificate from the configured CA is refused."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from maas.client import Client
from maas.errors import FailedPrecondition, Unavailable
from maas.server.tls import check_tls

from .auth_certs import Pki, make_pki
from .conftest import Endpoints, make_settings, serving

KEY = "tls-test-key"
X = np.array([[1, 2, 3, 4]], dtype=np.float32)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Endpoints]:
    settings = make_settings(tmp_path_factory.mktemp("tls"), api_key=KEY, tls_cert=pki.server_cert,
                             tls_key=pki.server_key)
    with serving(settings) as endpoints:
        yield endpoints


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Endpoints]:
    settings = make_settings(tmp_path_factory.mktemp("mtls"), tls_cert=pki.server_cert, tls_key=pki.server_key,
                             tls_client_ca=pki.ca)
    with serving(settings) as endpoints:
        yield endpoints


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True, text=True, timeout=30)


def http_input() -> list[httpclient.InferInput]:
    inp = httpclient.InferInput("x", [1, 4], "FP32")
    inp.set_data_from_numpy(X, binary_data=True)
    return [inp]


def grpc_input() -> list[grpcclient.InferInput]:
    inp = grpcclient.InferInput("x", [1, 4], "FP32")
    inp.set_data_from_numpy(X)
    return [inp]


# --- TLS ----------------------------------------------------------------------------------------------------
def test_curl_over_https(tls: Endpoints, pki: Pki) -> None:
    url = f"https://{tls.http}"
    ok = curl("--cacert", str(pki.ca), f"{url}/v2/health/ready")
    assert ok.returncode == 0 and '"ready":true' in ok.stdout.replace(" ", "")
    infer = curl("--cacert", str(pki.ca), "-H", f"Authorization: Bearer {KEY}", "-H", "Content-Type: application/json",
                 "-d", '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}',
                 f"{url}/v2/models/linear/infer")
    assert infer.returncode == 0 and '"outputs"' in infer.stdout
    assert curl("--cacert", str(pki.ca), "-o", "/dev/null", "-w", "%{http_code}",
                f"{url}/v2/models/linear").stdout == "401"  # TLS does not replace the key
    assert curl(f"{url}/v2/health/ready").returncode == 60  # not signed by a CA curl knows


def test_plain_text_is_refused_on_tls_ports(tls: Endpoints) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{tls.http}/v2/health/ready", timeout=10)
    c = grpcclient.InferenceServerClient(tls.grpc)
    try:
        with pytest.raises(InferenceServerException) as info:
            c.is_server_live(client_timeout=10)
        assert info.value.status() in ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED")
    finally:
        c.close()


def test_tritonclient_http_over_tls(tls: Endpoints, pki: Pki) -> None:
    c = httpclient.InferenceServerClient(tls.http, ssl=True, ssl_options={"ca_certs": str(pki.ca)})
    try:
        assert c.is_server_ready()
        out = c.infer("linear", http_input(), headers={"Authorization": f"Bearer {KEY}"})
        assert out.as_numpy("y").shape == (1, 3)
    finally:
        c.close()


def test_tritonclient_grpc_over_tls(tls: Endpoints, pki: Pki) -> None:
    c = grpcclient.InferenceServerClient(tls.grpc, ssl=True, root_certificates=str(pki.ca))
    try:
        assert c.is_server_ready()
        out = c.infer("linear", grpc_input(), headers={"authorization": f"Bearer {KEY}"})
        assert out.as_numpy("y").shape == (1, 3)
        with pytest.raises(InferenceServerException) as info:
            c.get_model_metadata("linear")
        assert info.value.status() == "StatusCode.UNAUTHENTICATED"
    finally:
        c.close()


def test_sdk_over_tls(tls: Endpoints, pki: Pki) -> None:
    with Client(f"https://{tls.http}", api_key=KEY, ca_cert=pki.ca) as c:
        assert {m.name for m in c.list_models()} == {"linear", "echo"}
    with Client(f"https://{tls.http}", api_key=KEY) as c, pytest.raises(Unavailable):
        c.list_models()  # the system store does not trust the private CA


# --- mTLS ---------------------------------------------------------------------------------------------------
def test_curl_needs_a_client_certificate_under_mtls(mtls: Endpoints, pki: Pki) -> None:
    url = f"https://{mtls.http}/v2/health/ready"
    ok = curl("--cacert", str(pki.ca), "--cert", str(pki.client_cert), "--key", str(pki.client_key), url)
    assert ok.returncode == 0 and "ready" in ok.stdout
    assert curl("--cacert", str(pki.ca), url).returncode != 0
    rogue = curl("--cacert", str(pki.ca), "--cert", str(pki.rogue_cert), "--key", str(pki.rogue_key), url)
    assert rogue.returncode != 0


def test_tritonclient_under_mtls(mtls: Endpoints, pki: Pki) -> None:
    options = {"ca_certs": str(pki.ca), "certfile": str(pki.client_cert), "keyfile": str(pki.client_key)}
    h = httpclient.InferenceServerClient(mtls.http, ssl=True, ssl_options=options)
    g = grpcclient.InferenceServerClient(mtls.grpc, ssl=True, root_certificates=str(pki.ca),
                                         private_key=str(pki.client_key), certificate_chain=str(pki.client_cert))
    try:
        assert h.infer("linear", http_input()).as_numpy("y").shape == (1, 3)
        assert g.infer("linear", grpc_input()).as_numpy("y").shape == (1, 3)
    finally:
        h.close()
        g.close()
    for key, chain in ((None, None), (pki.rogue_key, pki.rogue_cert)):
        bare = grpcclient.InferenceServerClient(mtls.grpc, ssl=True, root_certificates=str(pki.ca),
                                                private_key=str(key) if key else None,
                                                certificate_chain=str(chain) if chain else None)
        try:
            with pytest.raises(InferenceServerException) as info:
                bare.is_server_live(client_timeout=10)
            assert info.value.status() in ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED")
        finally:
            bare.close()


def test_sdk_under_mtls(mtls: Endpoints, pki: Pki) -> None:
    with Client(f"https://{mtls.http}", ca_cert=pki.ca, client_cert=pki.client_cert, client_key=pki.client_key) as c:
        assert len(c.list_models()) == 2
    with Client(f"https://{mtls.http}", ca_cert=pki.ca) as c, pytest.raises(Unavailable):
        c.list_models()


def test_bad_tls_files_fail_before_start(tmp_path: Path, pki: Pki) -> None:
    for kwargs, match in (({"tls_cert": pki.server_cert}, "both"),
                          ({"tls_cert": tmp_path / "nope.pem", "tls_key": pki.server_key}, "no such file"),
                          ({"tls_cert": pki.server_cert, "tls_key": pki.client_key}, "cannot use"),
                          ({"tls_cert": pki.server_cert, "tls_key": pki.server_key, "tls_client_ca": pki.server_key},
                           "client CA")):
        with pytest.raises(FailedPrecondition, match=match):
            check_tls(make_settings(tmp_path, **kwargs))
