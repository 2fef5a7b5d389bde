"""`serve --auth` and `agent-backlog token` (issue 18): every route with no token, an
unknown one, a revoked one, an expired one, another agent's token, the agent's own
token and an admin token — the status, the error body, and nothing written when
refused; secrets never in the server's log or in `token list`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from agent_backlog import Store

from conftest import agent_backlog_bin, serving, stop

AGENT = "support-bot"
OTHER = "marketing-lead"


def cli(db: Path, *args: str) -> Any:
    out = subprocess.run([agent_backlog_bin(), "--db", str(db), *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def request(base: str, method: str, path: str, body: Any = None, secret: Optional[str] = None,
            stream: bool = False) -> Tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if secret is not None:
        req.add_header("Authorization", f"Bearer {secret}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            if stream:
                return response.status, None
            text = response.read().decode()
            return response.status, (json.loads(text) if text.strip() and path != "/" and not path.startswith("/ui/") else text)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, json.loads(text) if text.strip() else None


def snapshot(db: Path) -> object:
    with Store(db) as store:
        return (store.query_tasks(), store.events(after=0, limit=1000), store.list_agents())


@pytest.fixture
def secured(tmp_path: Path) -> Any:
    db = tmp_path / "auth.db"
    with Store(db) as store:
        store.create_tasks(AGENT, [{"title": f"s{i}"} for i in range(1, 7)])
        store.create_tasks(OTHER, [{"title": "m1"}])
    tokens = {
        "own": cli(db, "token", "create", "--agent", AGENT)["secret"],
        "other": cli(db, "token", "create", "--agent", OTHER)["secret"],
        "admin": cli(db, "token", "create", "--admin", "--name", "ops-admin")["secret"],
        "revoked": cli(db, "token", "create", "--agent", AGENT, "--name", "old-laptop")["secret"],
        "expired": cli(db, "token", "create", "--agent", AGENT, "--name", "short", "--expires", "1")["secret"],
    }
    revoked_id = int(tokens["revoked"].split("_")[1])
    assert cli(db, "token", "revoke", str(revoked_id))["revoked"] is not None
    connection = sqlite3.connect(db)
    with connection:
        connection.execute("UPDATE tokens SET expires = 1 WHERE name = 'short'")
    connection.close()
    tokens["unknown"] = tokens["own"][:-4] + "0000"
    tokens["garbage"] = "not-a-token"
    return db, tokens


def lease_of(db: Path, task: str) -> str:
    """A fresh lease on one of the agent's queued tasks (the one named, requeued first)."""
    with Store(db) as store:
        if store.get_task(AGENT, task)["status"] != "queued":
            store.update_task(AGENT, task, status="queued")
        while True:
            claim = store.claim_lease(AGENT, "setup")
            assert claim is not None
            if claim["task"]["id"] == task:
                return claim["lease"]["token"]
            store.finish_lease(claim["lease"]["token"], "queued")


# (method, path, body) per route; "{lease}" is a fresh lease on SUP-006. Whose: the
# agent's own routes, or every agent's (admin only).
OWN: List[Tuple[str, str, Any]] = [
    ("GET", "/api/backlogs/support-bot", None),
    ("POST", "/api/backlogs/support-bot", {"title": "new"}),
    ("GET", "/api/backlogs/support-bot/SUP-002", None),
    ("PATCH", "/api/backlogs/support-bot/SUP-002", {"title": "renamed"}),
    ("DELETE", "/api/backlogs/support-bot/SUP-005", None),
    ("GET", "/api/backlogs/support-bot/summary", None),
    ("POST", "/api/backlogs/support-bot/claim", None),
    ("POST", "/api/backlogs/support-bot/batch", [{"title": "b"}]),
    ("PUT", "/api/backlogs/support-bot/prefix", {"prefix": "SUP"}),
    ("POST", "/api/backlogs/support-bot/leases", {"worker": "w1"}),
    ("POST", "/api/leases/{lease}/renew", {}),
    ("POST", "/api/leases/{lease}/finish", {"status": "queued"}),
    ("POST", "/api/leases/{lease}/finish-and-claim", {"status": "queued"}),
    ("GET", "/api/backlogs/support-bot/SUP-006/lease", None),
    ("POST", "/api/backlogs/support-bot/reap", None),
    ("PUT", "/api/backlogs/support-bot/SUP-003/dependencies/SUP-004", None),
    ("DELETE", "/api/backlogs/support-bot/SUP-003/dependencies/SUP-004", None),
    ("GET", "/api/backlogs/support-bot/SUP-003/dependencies", None),
    ("GET", "/api/backlogs/support-bot/ready", None),
    ("GET", "/api/backlogs/support-bot/SUP-002/history", None),
    ("GET", "/api/backlogs?agent_id=support-bot", None),
    ("GET", "/api/events?agent_id=support-bot", None),
    ("GET", "/api/events/stream?agent_id=support-bot", None),
]
EVERY_AGENT: List[Tuple[str, str, Any]] = [
    ("GET", "/api/backlogs", None),
    ("POST", "/api/reap", None),
    ("GET", "/api/events", None),
    ("POST", "/api/events/prune", {"before": 1}),
    ("GET", "/api/agents", None),
    ("GET", "/api/events/stream", None),
]


def test_every_route_answers_each_kind_of_token(secured: Any) -> None:
    db, tokens = secured
    with serving(db, "--auth") as (base, _):
        def send(method: str, path: str, body: Any, secret: Optional[str]) -> Tuple[int, Any]:
            return request(base, method, path, body, secret, stream=path.startswith("/api/events/stream"))

        for route in OWN + EVERY_AGENT:
            method, path, body = route
            if "{lease}" in path:
                path = path.replace("{lease}", lease_of(db, "SUP-006"))
            before = snapshot(db)
            for kind in ("none", "unknown", "garbage", "revoked", "expired"):
                status, answer = send(method, path, body, None if kind == "none" else tokens[kind])
                assert status == 401, (method, path, kind, status, answer)
                assert answer["error"]["code"] == "unauthenticated", answer
                if kind in ("revoked", "expired"):
                    assert kind[:6] in answer["error"]["message"], answer
            status, answer = send(method, path, body, tokens["other"])
            assert status == 403, (method, path, status, answer)
            assert answer["error"]["code"] == "forbidden", answer
            if route in EVERY_AGENT:
                status, answer = send(method, path, body, tokens["own"])
                assert status == 403 and answer["error"]["code"] == "forbidden", (method, path, status, answer)
            assert snapshot(db) == before, f"a refused {method} {path} changed the store"
            # The agent's own token on its routes, and the admin's on every route: let
            # in (the call's own answer; the admin's repeats the agent's write, so a
            # delete of what is gone is a 404).
            if route in OWN:
                status, answer = send(method, path, body, tokens["own"])
                assert status < 400 or status == 409, (method, path, status, answer)
            status, answer = send(method, path, body, tokens["admin"])
            assert status < 400 or status in (404, 409), (method, path, "admin", status, answer)
            assert status not in (401, 403)

        # The public page and its files; the document of the API with any token.
        assert request(base, "GET", "/")[0] == 200
        assert request(base, "GET", "/ui/app.js")[0] == 200
        assert request(base, "GET", "/openapi.json")[0] == 401
        assert request(base, "GET", "/openapi.json", secret=tokens["own"])[0] == 200
        # An unknown route: the token first.
        assert request(base, "GET", "/api/nowhere")[0] == 401
        assert request(base, "GET", "/api/nowhere", secret=tokens["admin"])[0] == 404

    log = (db.parent / (db.name + ".serve.log")).read_text()
    for secret in tokens.values():
        if secret.startswith("abt_"):
            assert secret not in log and secret[4:] not in log
    assert "401 (token refused)" in log
    listed = subprocess.run([agent_backlog_bin(), "--db", str(db), "token", "list"], capture_output=True, text=True)
    for secret in tokens.values():
        assert secret not in listed.stdout
        assert secret.split("_")[-1] not in listed.stdout


def test_a_token_acts_as_its_name_unless_the_request_names_an_actor(secured: Any) -> None:
    db, tokens = secured
    with serving(db, "--auth") as (base, _):
        status, created = request(base, "POST", "/api/backlogs/support-bot", {"title": "by token"}, tokens["own"])
        assert status == 201
        req = urllib.request.Request(base + "/api/backlogs/support-bot", data=b'{"title": "named"}', method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Authorization", f"Bearer {tokens['own']}")
        req.add_header("Agent-Backlog-Actor", "release-bot")
        with urllib.request.urlopen(req, timeout=30) as response:
            named = json.loads(response.read())
    with Store(db) as store:
        first = store.task_history(AGENT, created["id"])["events"][0]
        second = store.task_history(AGENT, named["id"])["events"][0]
    assert first["actor"] == "support-bot-1"
    assert second["actor"] == "release-bot"


def test_a_lease_of_another_agents_task_is_forbidden(secured: Any) -> None:
    db, tokens = secured
    with Store(db) as store:
        claim = store.claim_lease(OTHER, "w")
        assert claim is not None
    with serving(db, "--auth") as (base, _):
        path = f"/api/leases/{claim['lease']['token']}/finish"
        status, answer = request(base, "POST", path, {"status": "complete"}, tokens["own"])
        assert status == 403 and answer["error"]["code"] == "forbidden"
        status, done = request(base, "POST", path, {"status": "complete"}, tokens["other"])
        assert status == 200 and done["status"] == "complete"


def test_mcp_over_http_takes_an_admin_token_or_the_bound_agents(secured: Any) -> None:
    db, tokens = secured
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "test", "version": "1"}}}

    def initialize(base: str, secret: Optional[str]) -> int:
        req = urllib.request.Request(base + "/mcp", data=json.dumps(hello).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "application/json, text/event-stream")
        if secret:
            req.add_header("Authorization", f"Bearer {secret}")
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return int(response.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    with serving(db, "--auth", "--mcp", "--mcp-agent", AGENT) as (base, _):
        assert initialize(base, None) == 401
        assert initialize(base, tokens["other"]) == 403
        assert initialize(base, tokens["own"]) == 200
        assert initialize(base, tokens["admin"]) == 200
    with serving(db, "--auth", "--mcp") as (base, _):
        assert initialize(base, tokens["own"]) == 403
        assert initialize(base, tokens["admin"]) == 200


def test_an_address_beyond_loopback_needs_auth(tmp_path: Path) -> None:
    db = tmp_path / "open.db"
    out = subprocess.run([agent_backlog_bin(), "--db", str(db), "serve", "--host", "0.0.0.0", "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 64, out.stderr
    assert "--auth" in out.stderr and "--insecure-no-auth" in out.stderr
    log = tmp_path / "open.log"
    with log.open("w") as stderr:
        server = subprocess.Popen([agent_backlog_bin(), "--db", str(db), "serve", "--host", "0.0.0.0", "--port", "0",
                                   "--insecure-no-auth"], stdin=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(r"listening on http://0\.0\.0\.0:(\d+)", log.read_text())):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
        assert request(f"http://127.0.0.1:{found.group(1)}", "GET", "/api/agents")[0] == 200
    finally:
        stop(server)
    assert "warning" in log.read_text() and "--insecure-no-auth" in log.read_text()


def test_token_commands_refuse_bad_input(tmp_path: Path) -> None:
    db = tmp_path / "t.db"

    def run(*args: str) -> "subprocess.CompletedProcess[str]":
        return subprocess.run([agent_backlog_bin(), "--db", str(db), "token", *args], capture_output=True, text=True)

    assert run("create").returncode == 64
    bad_agent = run("create", "--agent", "no spaces")
    assert bad_agent.returncode == 1 and "agent_id" in bad_agent.stderr
    assert run("create", "--admin", "--expires", "0").returncode == 1
    assert run("create", "--admin", "--name", "a b").returncode == 1
    assert run("create", "--admin", "--name", "ops").returncode == 0
    taken = run("create", "--agent", "x", "--name", "ops")
    assert taken.returncode == 4 and "ops" in taken.stderr
    assert run("revoke", "99").returncode == 2
    assert [t["name"] for t in json.loads(run("list").stdout)["tokens"]] == ["ops"]


# --- TLS and limits ------------------------------------------------------------------


def self_signed(directory: Path) -> Tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, made here, and its key (PEM files)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_with_a_certificate_made_in_the_test(secured: Any, tmp_path: Path) -> None:
    import ssl

    db, tokens = secured
    cert, key = self_signed(tmp_path)
    log = tmp_path / "tls.log"
    with log.open("w") as stderr:
        server = subprocess.Popen([agent_backlog_bin(), "--db", str(db), "serve", "--port", "0", "--auth",
                                   "--tls-cert", str(cert), "--tls-key", str(key)],
                                  stdin=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 20
        while not (found := re.search(r"listening on https://127\.0\.0\.1:(\d+)", log.read_text())):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
        port = found.group(1)
        context = ssl.create_default_context(cafile=str(cert))
        req = urllib.request.Request(f"https://localhost:{port}/api/backlogs/{AGENT}/summary")
        req.add_header("Authorization", f"Bearer {tokens['own']}")
        with urllib.request.urlopen(req, timeout=30, context=context) as response:
            assert json.loads(response.read())["total"] == 6
        # Plain HTTP on the TLS port gets no HTTP answer at all.
        with pytest.raises((urllib.error.URLError, ConnectionError, http_client_errors())) as plain:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/agents", timeout=10)
        assert not isinstance(plain.value, urllib.error.HTTPError)
        # A client that does not trust the certificate is refused by its own TLS.
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"https://localhost:{port}/", timeout=10,
                                   context=ssl.create_default_context())
    finally:
        stop(server)


def http_client_errors() -> type:
    import http.client

    return http.client.HTTPException


def test_a_client_sending_one_byte_a_second_is_cut_off_while_others_are_served(secured: Any) -> None:
    import socket

    db, tokens = secured
    with serving(db, "--auth", "--head-timeout", "2") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        slow = socket.create_connection((host, int(port)), timeout=10)
        started = time.monotonic()
        closed_at: Optional[float] = None
        served_meanwhile = 0
        head = f"GET /api/agents HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {tokens['admin']}\r\n\r\n".encode()
        try:
            for byte in head:
                try:
                    slow.sendall(bytes([byte]))
                except OSError:
                    closed_at = time.monotonic()
                    break
                # Meanwhile another client is served at once.
                status, _ = request(base, "GET", f"/api/backlogs/{AGENT}/summary", secret=tokens["own"])
                served_meanwhile += status == 200
                slow.settimeout(1.0)
                try:
                    # Closed (b"") or answered (408) before its head was complete.
                    slow.recv(1024)
                    closed_at = time.monotonic()
                    break
                except socket.timeout:
                    pass
                except OSError:
                    closed_at = time.monotonic()
                    break
                if time.monotonic() - started > 30:
                    break
        finally:
            slow.close()
        assert closed_at is not None, "the slow client was never cut off"
        assert closed_at - started < 20
        assert served_meanwhile >= 1


def test_the_rate_limit_answers_429_and_recovers(secured: Any) -> None:
    db, tokens = secured
    with serving(db, "--auth", "--rate", "5", "--burst", "5") as (base, _):
        statuses = []
        retry_after = None
        for _ in range(20):
            req = urllib.request.Request(base + f"/api/backlogs/{AGENT}/summary")
            req.add_header("Authorization", f"Bearer {tokens['own']}")
            try:
                with urllib.request.urlopen(req, timeout=30) as response:
                    statuses.append(response.status)
            except urllib.error.HTTPError as e:
                statuses.append(e.code)
                if e.code == 429:
                    retry_after = e.headers.get("Retry-After")
                    assert json.loads(e.read())["error"]["code"] == "rate_limited"
        assert statuses.count(200) >= 5 and 429 in statuses, statuses
        assert retry_after is not None and int(retry_after) >= 1
        # Another token has its own quota.
        assert request(base, "GET", "/api/agents", secret=tokens["admin"])[0] == 200
        time.sleep(int(retry_after) + 0.2)
        assert request(base, "GET", f"/api/backlogs/{AGENT}/summary", secret=tokens["own"])[0] == 200


def test_long_polls_per_client_are_capped(secured: Any) -> None:
    import threading

    db, tokens = secured
    with serving(db, "--auth", "--max-waits", "2") as (base, _):
        results: List[int] = []

        def long_poll() -> None:
            results.append(request(base, "GET", "/api/events?agent_id=support-bot&after=1000&wait_seconds=3",
                                   secret=tokens["own"])[0])

        waiting = [threading.Thread(target=long_poll) for _ in range(2)]
        for t in waiting:
            t.start()
        time.sleep(1.0)
        status, answer = request(base, "GET", "/api/events?agent_id=support-bot&after=1000&wait_seconds=3",
                                 secret=tokens["own"])
        assert status == 429 and answer["error"]["code"] == "rate_limited", (status, answer)
        # Another client (the admin's token) is not held back.
        assert request(base, "GET", "/api/events?after=1000&wait_seconds=0.1", secret=tokens["admin"])[0] == 200
        for t in waiting:
            t.join()
        assert results == [200, 200]
        assert request(base, "GET", "/api/events?agent_id=support-bot&after=1000&wait_seconds=0.1",
                       secret=tokens["own"])[0] == 200


def test_mcp_writes_over_http_are_recorded_as_the_tokens_name(secured: Any) -> None:
    """The official MCP client, with the agent's token in its HTTP client: its tools
    reach the bound backlog, and what they write is the token's doing."""
    import anyio
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    db, tokens = secured

    async def main(url: str) -> Dict[str, Any]:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {tokens['own']}"})
        async with http:
            with anyio.fail_after(30):
                async with Client(streamable_http_client(url, http_client=http), read_timeout_seconds=30) as client:
                    reply = await client.call_tool("create_task", {"title": "Over MCP"})
                    assert reply.structured_content is not None
                    return dict(reply.structured_content)

    with serving(db, "--auth", "--mcp", "--mcp-agent", AGENT) as (base, _):
        created = anyio.run(main, base + "/mcp")
    with Store(db) as store:
        history = store.task_history(AGENT, created["id"])
    assert history["events"][0]["actor"] == "support-bot-1"


def test_a_body_that_does_not_arrive_in_time_is_408(secured: Any) -> None:
    import socket

    db, tokens = secured
    with serving(db, "--auth", "--body-timeout", "1") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=20) as slow:
            slow.sendall((f"POST /api/backlogs/{AGENT} HTTP/1.1\r\nHost: {host}\r\n"
                          f"Authorization: Bearer {tokens['own']}\r\nContent-Type: application/json\r\n"
                          "Content-Length: 40\r\n\r\n{\"title\": ").encode())
            answer = slow.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "did not arrive within 1 s" in answer
    with Store(db) as store:
        assert store.summary(AGENT)["total"] == 6


def test_connections_past_the_cap_are_closed_and_the_others_served(secured: Any) -> None:
    import socket

    db, tokens = secured
    with serving(db, "--auth", "--max-connections", "2") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        held = [socket.create_connection((host, int(port)), timeout=10) for _ in range(2)]
        try:
            time.sleep(0.3)
            extra = socket.create_connection((host, int(port)), timeout=10)
            extra.sendall(f"GET /api/agents HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            try:
                assert extra.recv(1024) == b""
            except ConnectionResetError:
                pass
            extra.close()
            # One of the held connections is served as usual.
            held[0].sendall((f"GET /api/agents HTTP/1.1\r\nHost: {host}\r\n"
                             f"Authorization: Bearer {tokens['admin']}\r\n\r\n").encode())
            assert held[0].recv(4096).startswith(b"HTTP/1.1 200")
        finally:
            for connection in held:
                connection.close()
        time.sleep(0.3)
        assert request(base, "GET", "/api/agents", secret=tokens["admin"])[0] == 200
        log = (db.parent / (db.name + ".serve.log")).read_text()
    assert "--max-connections" in log


def test_an_agents_token_may_not_name_another_agents_task_as_a_dependency(secured: Any) -> None:
    db, tokens = secured
    with serving(db, "--auth") as (base, _):
        before = snapshot(db)
        for method, path, body in [
            ("PUT", "/api/backlogs/support-bot/SUP-001/dependencies/MKT-001", None),
            ("POST", "/api/backlogs/support-bot", {"title": "x", "depends_on": ["MKT-001"]}),
            ("POST", "/api/backlogs/support-bot/batch", [{"title": "x", "depends_on": ["MKT-001"]}]),
        ]:
            status, answer = request(base, method, path, body, tokens["own"])
            assert status == 403 and answer["error"]["code"] == "forbidden", (path, status, answer)
        assert snapshot(db) == before
        status, _ = request(base, "PUT", "/api/backlogs/support-bot/SUP-001/dependencies/SUP-002", None, tokens["own"])
        assert status == 200


def test_a_stream_ends_when_its_token_is_revoked(secured: Any) -> None:
    import http.client

    db, tokens = secured
    with serving(db, "--auth") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", f"/api/events/stream?agent_id={AGENT}&after=now",
                           headers={"Authorization": f"Bearer {tokens['own']}"})
        response = connection.getresponse()
        assert response.status == 200
        own_id = tokens["own"].split("_")[1]
        cli(db, "token", "revoke", own_id)
        # A change wakes the stream: it ends instead of sending it.
        assert request(base, "POST", f"/api/backlogs/{AGENT}", {"title": "after"}, tokens["admin"])[0] == 201
        started = time.monotonic()
        rest = response.read()  # returns when the server ends the stream
        assert time.monotonic() - started < 20
        assert b"after" not in rest
        connection.close()


def test_a_body_trickled_past_its_deadline_is_408(secured: Any) -> None:
    """The deadline is for the whole body, not for the pause between two bytes."""
    import socket

    db, tokens = secured
    body = b'{"title": "trickled in one byte at a time"}'
    with serving(db, "--auth", "--body-timeout", "1") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=20) as slow:
            slow.sendall((f"POST /api/backlogs/{AGENT} HTTP/1.1\r\nHost: {host}\r\n"
                          f"Authorization: Bearer {tokens['own']}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(body)}\r\n\r\n").encode())
            slow.settimeout(0.3)
            answer = b""
            for byte in body:
                try:
                    slow.sendall(bytes([byte]))
                    answer = slow.recv(4096)
                    if answer:
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
            if not answer:
                slow.settimeout(10)
                answer = slow.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
    with Store(db) as store:
        assert store.summary(AGENT)["total"] == 6


def test_a_long_poll_given_up_by_its_client_frees_its_place(secured: Any) -> None:
    import socket

    db, tokens = secured
    with serving(db, "--auth", "--max-waits", "1") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        path = f"/api/events?agent_id={AGENT}&after=100000&wait_seconds=30"
        gone = socket.create_connection((host, int(port)), timeout=10)
        gone.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {tokens['own']}\r\n\r\n".encode())
        time.sleep(0.5)
        assert request(base, "GET", path.replace("30", "0.1"), secret=tokens["own"])[0] == 429
        gone.close()
        deadline = time.monotonic() + 10
        while request(base, "GET", path.replace("30", "0.1"), secret=tokens["own"])[0] == 429:
            assert time.monotonic() < deadline, "the abandoned long poll kept its place"
            time.sleep(0.1)
