"""python-socketio (PyPI) against sockeye: APP-CONTRACT as a Python client sees it."""

import time
import uuid

import pytest
import socketio

from conftest import OTHER_SECRET, WAIT, mint


def connect(rec, url, transports=("websocket",), **kwargs):
    rec.sio.connect(url, transports=list(transports), wait_timeout=WAIT, **kwargs)
    assert rec.sio.connected
    return rec


@pytest.mark.parametrize("transports", [("polling",), ("websocket",), ("polling", "websocket")])
def test_connect_with_auth_token_and_echo(url, make_client, transports):
    sub = f"py-{uuid.uuid4().hex[:8]}"
    rec = connect(make_client(), url, transports, auth={"token": mint(sub)})
    res = rec.sio.call("message", {"content": "hello from python"}, timeout=WAIT)
    assert res["ok"] is True, res
    msg = rec.next("message")
    assert msg["content"] == "hello from python"
    assert msg["id"] == res["id"]
    assert msg["from"] == {"sub": sub, "sid": rec.sid}
    assert "room" not in msg
    assert abs(msg["ts"] - time.time() * 1000) < 60_000


def test_connect_with_bearer_header(url, make_client):
    rec = connect(make_client(), url, headers={"Authorization": f"Bearer {mint()}"})
    assert rec.sio.call("message", {"content": "header"}, timeout=WAIT)["ok"] is True


def test_connect_with_query_token(url, make_client):
    rec = connect(make_client(), f"{url}/?token={mint()}", transports=("polling", "websocket"))
    assert rec.sio.call("message", {"content": "query"}, timeout=WAIT)["ok"] is True


def test_rooms_across_two_clients(url, make_client):
    room = f"py-room-{uuid.uuid4().hex[:8]}"
    alice_sub = f"alice-{uuid.uuid4().hex[:6]}"
    alice = connect(make_client(), url, ("websocket",), auth={"token": mint(alice_sub)})
    bob = connect(make_client(), url, ("polling",), auth={"token": mint()})
    outsider = connect(make_client(), url, auth={"token": mint()})

    assert alice.sio.call("join", room, timeout=WAIT) == {"ok": True, "room": room, "size": 1}
    assert bob.sio.call("join", {"room": room}, timeout=WAIT) == {"ok": True, "room": room, "size": 2}

    res = alice.sio.call("message", {"content": "to the room", "room": room}, timeout=WAIT)
    assert res["ok"] is True, res
    for rec in (alice, bob):
        msg = rec.next("message")
        assert msg["content"] == "to the room"
        assert msg["room"] == room
        assert msg["id"] == res["id"]
        assert msg["from"] == {"sub": alice_sub, "sid": alice.sid}
    outsider.none("message")

    assert bob.sio.call("leave", room, timeout=WAIT) == {"ok": True, "room": room}
    alice.sio.emit("message", {"content": "after bob left", "room": room})
    assert alice.next("message")["content"] == "after bob left"
    bob.none("message")


def test_not_in_room_and_validation_errors(url, make_client):
    rec = connect(make_client(), url, auth={"token": mint()})
    res = rec.sio.call("message", {"content": "x", "room": "nobody-here"}, timeout=WAIT)
    assert res["ok"] is False
    assert res["error"]["code"] == "NOT_IN_ROOM"
    assert res["error"]["event"] == "message"
    rec.none("error")

    rec.sio.emit("message", {"content": ""})
    err = rec.next("error")
    assert err["code"] == "VALIDATION"
    assert err["event"] == "message"
    assert isinstance(err["message"], str) and err["message"]

    rec.sio.emit("join", "not a valid room")
    err = rec.next("error")
    assert (err["code"], err["event"]) == ("VALIDATION", "join")


@pytest.mark.parametrize(
    "reason,auth",
    [
        ("missing", None),
        ("bad_signature", lambda: {"token": mint(secret=OTHER_SECRET)}),
        ("expired", lambda: {"token": mint(ttl=-60)}),
        ("malformed", lambda: {"token": "definitely-not-a-jwt"}),
    ],
)
def test_refused_connection_reports_its_reason(url, make_client, reason, auth):
    rec = make_client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        rec.sio.connect(url, transports=["websocket"], auth=auth() if auth else None, wait_timeout=WAIT)
    err = rec.next("connect_error")
    assert err == {"message": "unauthorized", "data": {"code": "UNAUTHORIZED", "reason": reason}}
    assert not rec.sio.connected
