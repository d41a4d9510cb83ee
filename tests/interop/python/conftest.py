"""Fixtures for the python-socketio interop tests.

The server is the `default` scenario of ../scenarios.txt: the URL in SOCKEYE_URL_DEFAULT when
run.sh started it, otherwise a sockeye process this session starts itself (SOCKEYE_BIN or
target/debug/sockeye) and stops at the end. Tokens are HS256, minted here with the standard
library.
"""

import base64
import hashlib
import hmac
import json
import os
import queue
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import socketio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
SECRET = os.environ.get("SOCKEYE_TEST_SECRET", "sockeye-interop-test-secret-0123456789abcdef")
OTHER_SECRET = "sockeye-interop-other-secret-9876543210fedcba"
WAIT = 5.0

_counter = 0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(sub=None, ttl=3600, secret=SECRET, **claims):
    """An HS256 JWT for `sub` (unique when omitted) expiring in `ttl` seconds."""
    global _counter
    _counter += 1
    now = int(time.time())
    body = {"sub": sub or f"py-{os.getpid()}-{_counter}", "iat": now, "exp": now + ttl, **claims}
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(body).encode())
    signing_input = f"{head}.{payload}".encode()
    sig = _b64url(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest())
    tokens = os.environ.get("SOCKEYE_INTEROP_TOKENS")
    if tokens:
        with open(tokens, "a", encoding="utf-8") as f:
            f.write(sig + "\n")
    return f"{head}.{payload}.{sig}"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def url():
    env_url = os.environ.get("SOCKEYE_URL_DEFAULT")
    if env_url:
        yield env_url.rstrip("/")
        return
    binary = Path(os.environ.get("SOCKEYE_BIN", ROOT / "target" / "debug" / "sockeye"))
    if not binary.exists():
        pytest.fail(f"sockeye binary not found at {binary}: build it or set SOCKEYE_BIN", pytrace=False)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCKEYE_") and k != "PORT"}
    proc = subprocess.Popen(
        [str(binary), "--host", "127.0.0.1", "--port", str(port), "--jwt-secret", SECRET],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while True:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1)
            break
        except urllib.error.HTTPError:
            break  # it answers HTTP
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                out = proc.stdout.read().decode(errors="replace")
                pytest.fail(f"sockeye did not start on {base}:\n{out}", pytrace=False)
            time.sleep(0.1)
    yield base
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


class Recorder:
    """A python-socketio client whose events land in queues the test can wait on."""

    def __init__(self):
        self.sio = socketio.Client(reconnection=False)
        self.events = {name: queue.Queue() for name in ("message", "error", "connect_error", "disconnect")}
        for name, q in self.events.items():
            self.sio.on(name, self._put(q))

    @staticmethod
    def _put(q):
        def handler(*args):
            q.put(args[0] if len(args) == 1 else args)
        return handler

    def next(self, event, timeout=WAIT):
        try:
            return self.events[event].get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no '{event}' event within {timeout} s") from None

    def none(self, event, timeout=0.4):
        try:
            got = self.events[event].get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected '{event}' event: {got!r}")

    @property
    def sid(self):
        return self.sio.get_sid()


@pytest.fixture
def make_client():
    """make_client(): a fresh recorder; every one is disconnected after the test."""
    made = []

    def factory():
        r = Recorder()
        made.append(r)
        return r

    yield factory
    for r in made:
        try:
            r.sio.disconnect()
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass
