"""Attacks on a running annotation server (issue 17, points 1–5), through the JSON API and gradio_client."""

import errno
import os
import time
from collections import Counter

import httpx
import pytest
import requests

from annotate.users import add_annotator, disable_annotator
from data_schemas import AnnotationTask
from tests.annotate.conftest import make_campaign
from tests.annotate.test_app import PASSWORD, Server

CRITERIA = ("lip_sync", "expression", "motion", "overall")
LEFT = {c: "left" for c in CRITERIA}


@pytest.fixture
def server(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 4, "c2": [None] * 4})
    for name in ("alice", "bob"):
        add_annotator(campaign, name, PASSWORD)
    running = Server(campaign, AnnotationTask(gold_rate=0.0, overlap=2))
    yield running
    running.close()


def logged_in(server: Server, name: str, password: str = PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=30)
    reply = client.post("api/login", json={"username": name, "password": password})
    assert reply.status_code == 200, reply.text
    client.headers["Authorization"] = f"Bearer {reply.json()['token']}"
    return client


def stored(server: Server) -> Counter:
    return Counter(server.service.campaign.table("votes").column("showing_id").to_pylist())


def test_raw_clip_slots_are_refused_on_both_apis(server):
    alice = logged_in(server, "alice")
    item = alice.get("api/next_item").json()
    for slot in ("a", "b"):
        refused = alice.post("api/submit", json={"showing_id": item["showing_id"], "request_id": f"j-{slot}",
                                                 "answers": {c: slot for c in CRITERIA}})
        assert refused.status_code == 400
        assert f"'{slot}' is not one of left, right, tie, both_bad" in refused.json()["detail"]
    bob = server.client("bob")
    shown = bob.predict(api_name="/next_item")
    with pytest.raises(Exception, match="400: lip_sync: 'b' is not one of left, right, tie, both_bad"):
        bob.predict(shown["showing_id"], "g-1", {c: "b" for c in CRITERIA}, None, api_name="/submit_vote")
    assert stored(server) == {}
    assert alice.post("api/submit", json={"showing_id": item["showing_id"], "request_id": "j-ok",
                                          "answers": LEFT}).status_code == 200
    assert stored(server) == {item["showing_id"]: 4}


def test_a_full_disk_answers_503_stores_nothing_and_the_retry_is_stored_once(server, monkeypatch):
    alice = logged_in(server, "alice")
    item = alice.get("api/next_item").json()
    journal = server.service.campaign.journal_path("votes")
    real_write = os.write

    def disk_full(fd, data):
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(journal.resolve()):
            real_write(fd, bytes(data[: len(data) // 3]))  # a part gets to the disk, then it is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", disk_full)
    body = {"showing_id": item["showing_id"], "request_id": "try-1", "answers": LEFT}
    for _ in range(2):  # refused again and again while the disk is full
        full = alice.post("api/submit", json=body)
        assert full.status_code == 503 and "nothing of it was saved" in full.json()["detail"]
        assert journal.read_bytes() == b""
    monkeypatch.undo()
    again = alice.post("api/submit", json=dict(body, request_id="try-2"))
    assert again.status_code == 200 and again.json()["repeated"] is False
    assert alice.post("api/submit", json=dict(body, request_id="try-2")).json()["repeated"] is True
    assert stored(server) == {item["showing_id"]: 4}


def test_logins_back_off_by_account_and_address_on_both_login_routes(server):
    gradio_login = server.url + "login"
    for _ in range(6):  # 5 free failures, the 6th starts the back-off
        assert requests.post(gradio_login, data={"username": "bob", "password": "guess"}).status_code == 400
    throttled = requests.post(gradio_login, data={"username": "bob", "password": PASSWORD})
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    with pytest.raises(Exception):  # gradio_client's login is refused the same way
        server.client("bob")
    # The address is throttled too: the JSON login of another account from here waits as well.
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    reply = anonymous.post("api/login", json={"username": "alice", "password": PASSWORD})
    assert reply.status_code == 429 and int(reply.headers["Retry-After"]) >= 1
    time.sleep(int(reply.headers["Retry-After"]))
    assert anonymous.post("api/login", json={"username": "alice", "password": PASSWORD}).status_code == 200


def test_disable_and_a_new_password_end_sessions_within_seconds(server):
    campaign = server.service.campaign
    alice_api, bob_api = logged_in(server, "alice"), logged_in(server, "bob")
    alice_page = server.client("alice")
    assert alice_page.predict(api_name="/next_item")["done"] is False
    assert bob_api.get("api/next_item").status_code == 200
    disable_annotator(campaign, "alice")  # what `annotate users disable alice` does
    add_annotator(campaign, "bob", "a-new-password")  # a password change
    deadline = time.monotonic() + 10
    while alice_api.get("api/next_item").status_code != 401:
        assert time.monotonic() < deadline, "a disabled account kept its token"
        time.sleep(0.2)
    assert bob_api.get("api/next_item").status_code == 401
    with pytest.raises(Exception):
        alice_page.predict(api_name="/next_item")
    with pytest.raises(Exception):
        server.client("alice")  # nor can it log in again
    bob_again = logged_in(server, "bob", "a-new-password")
    assert bob_again.get("api/next_item").status_code == 200
    assert bob_again.post("api/logout").json() == {"logged_out": True}
    assert bob_again.get("api/next_item").status_code == 401


def test_tokens_expire(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 3})
    add_annotator(campaign, "alice", PASSWORD)
    running = Server(campaign, AnnotationTask(gold_rate=0.0), session_hours=3 / 3600)
    try:
        alice = logged_in(running, "alice")
        assert alice.get("api/next_item").status_code == 200
        time.sleep(3.2)
        assert alice.get("api/next_item").status_code == 401
    finally:
        running.close()


def test_bodies_are_bounded_and_errors_never_echo_the_input(server):
    alice = logged_in(server, "alice")
    item = alice.get("api/next_item").json()
    assert alice.post("api/submit", content=b"{" + b" " * 100_000 + b"}",
                      headers={"Content-Type": "application/json"}).status_code == 413
    assert requests.post(server.url + "gradio_api/queue/join", data=b"x" * 100_000).status_code == 413
    long_id = "z" * 60_000
    unknown = alice.post("api/submit", json={"showing_id": long_id, "request_id": "r1", "answers": LEFT})
    assert unknown.status_code == 404 and len(unknown.text) < 300
    bad_request = alice.post("api/submit", json={"showing_id": item["showing_id"], "request_id": long_id,
                                                 "answers": LEFT})
    assert bad_request.status_code == 400 and len(bad_request.text) < 300
    malformed = alice.post("api/submit", json={"request_id": long_id})
    assert malformed.status_code == 422 and "showing_id" in malformed.text and len(malformed.text) < 300
    reason = "\x1b[2Jfroze " + "r" * 5000
    skip = alice.post("api/submit", json={"showing_id": item["showing_id"], "request_id": "r2", "answers": None,
                                          "skip_reason": reason})
    assert skip.status_code == 200
    votes = server.service.campaign.table("votes").to_pylist()
    assert [len(v["skip_reason"] or "") for v in votes] == [500, 0, 0, 0]
    assert votes[0]["skip_reason"].startswith("[2Jfroze rrr")


def test_an_account_added_while_the_server_runs_works_at_once(server):
    add_annotator(server.service.campaign, "carol", PASSWORD)  # as `annotate serve --simulate N` does
    assert logged_in(server, "carol").get("api/next_item").status_code == 200
    assert server.client("carol").predict(api_name="/next_item")["done"] is False
