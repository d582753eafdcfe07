"""Attacks on a running annotation server (issue 17), through the JSON API and gradio_client."""

import errno
import http.client
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import requests

from annotate.users import add_annotator, disable_annotator
from campaign.task import save_task
from data_schemas import AnnotationTask
from bench.records_campaign import make_campaign
from tests.annotate.test_app import PASSWORD, Server
from tests.campaign.tmpfs import small_tmpfs

CRITERIA = ("lip_sync", "expression", "motion", "overall")
LEFT = {c: "left" for c in CRITERIA}


@pytest.fixture
def server(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 4, "c2": [None] * 4})
    for name in ("alice", "bob"):
        add_annotator(campaign, name, PASSWORD)
    running = Server(campaign, AnnotationTask(gold_rate=0.0, practice=0, overlap=2))
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
    running = Server(campaign, AnnotationTask(gold_rate=0.0, practice=0), session_hours=3 / 3600)
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


def test_a_full_tmpfs_stores_exactly_the_acknowledged_votes(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 4, "c2": [None] * 4})
    for name in ("alice", "bob", "carol"):
        add_annotator(campaign, name, PASSWORD)
    with small_tmpfs(campaign.root / "journal", "1m") as disk:
        running = Server(campaign, AnnotationTask(gold_rate=0.0, practice=0, overlap=3))
        try:
            clients = {name: logged_in(running, name) for name in ("alice", "bob", "carol")}
            first = clients["alice"].get("api/next_item").json()["showing_id"]
            assert clients["alice"].post("api/submit", json={"showing_id": first, "request_id": "first",
                                                             "answers": LEFT}).status_code == 200
            open_items = {name: client.get("api/next_item").json()["showing_id"] for name, client in clients.items()}
            disk.fill()  # to the brim: at most the slack of the journal's last page is left
            acknowledged, refused = [first], {}
            for name, showing_id in open_items.items():
                reply = clients[name].post("api/submit", json={"showing_id": showing_id, "request_id": f"{name}-1",
                                                               "answers": None, "skip_reason": "x" * 500})
                assert reply.status_code in (200, 503), reply.text
                if reply.status_code == 200:
                    acknowledged.append(showing_id)
                else:
                    assert "No space left on device" in reply.json()["detail"]
                    refused[name] = showing_id
                journal = campaign.journal_path("votes").read_bytes()
                assert journal.endswith(b"\n") and stored(running) == {s: 4 for s in acknowledged}
            assert refused, "a full disk took every vote"
            disk.empty()
            for name, showing_id in refused.items():  # submitted again once there is room: stored once
                reply = clients[name].post("api/submit", json={"showing_id": showing_id, "request_id": f"{name}-2",
                                                               "answers": LEFT})
                assert reply.status_code == 200 and reply.json()["repeated"] is False
                acknowledged.append(showing_id)
            assert stored(running) == {s: 4 for s in acknowledged}
        finally:
            running.close()


def test_a_restart_gives_everyone_their_open_item_back_under_the_same_id(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 4, "c2": [None] * 4})
    for name in ("alice", "bob", "carol"):
        add_annotator(campaign, name, PASSWORD)
    task = AnnotationTask(gold_rate=0.0, practice=0, overlap=3)
    running = Server(campaign, task)
    try:
        alice, bob = logged_in(running, "alice"), logged_in(running, "bob")
        answered = alice.get("api/next_item").json()
        vote = {"showing_id": answered["showing_id"], "request_id": "alice-1", "answers": LEFT}
        alice_open = alice.post("api/submit", json=vote).json()["next"]
        bob_open = bob.get("api/next_item").json()
        carol_open = running.client("carol").predict(api_name="/next_item")
    finally:
        running.close()
    running = Server(campaign, task)  # a new process state: nothing but the campaign folder is left
    try:
        alice, bob = logged_in(running, "alice"), logged_in(running, "bob")
        for client, before in ((alice, alice_open), (bob, bob_open)):
            after = client.get("api/next_item").json()
            assert (after["showing_id"], after["left"], after["right"]) == \
                (before["showing_id"], before["left"], before["right"])
        carol = running.client("carol").predict(api_name="/next_item")
        assert (carol["showing_id"], carol["left"]["clip"]) == (carol_open["showing_id"], carol_open["left"]["clip"])
        assert alice.post("api/submit", json=vote).json()["repeated"] is True  # a retry of the vote before
        for client, item in ((alice, alice_open), (bob, bob_open)):
            body = {"showing_id": item["showing_id"], "request_id": f"{item['showing_id']}-r", "answers": LEFT}
            assert client.post("api/submit", json=body).json()["repeated"] is False
            assert client.post("api/submit", json=body).json()["repeated"] is True
        assert stored(running) == {answered["showing_id"]: 4, alice_open["showing_id"]: 4, bob_open["showing_id"]: 4}
    finally:
        running.close()


def test_a_journal_moved_or_replaced_under_the_server_refuses_votes_until_it_is_back(server):
    alice = logged_in(server, "alice")
    campaign = server.service.campaign
    journal, moved = campaign.journal_path("votes"), campaign.root / "votes.moved"
    first = alice.get("api/next_item").json()["showing_id"]
    assert alice.post("api/submit", json={"showing_id": first, "request_id": "r1", "answers": LEFT}).status_code == 200
    body = {"showing_id": alice.get("api/next_item").json()["showing_id"], "request_id": "r2", "answers": LEFT}
    before = journal.read_bytes()
    journal.rename(moved)
    refused = alice.post("api/submit", json=body)
    assert refused.status_code == 503
    assert "journal/votes.jsonl was moved away or deleted while the server runs; nothing is stored until the " \
           "original file is back" in refused.json()["detail"]
    assert str(campaign.root) not in refused.text
    journal.mkdir()
    refused = alice.post("api/submit", json=body)
    assert refused.status_code == 503 and "journal/votes.jsonl was replaced by a folder" in refused.json()["detail"]
    summary = subprocess.run([str(Path(sys.executable).parent / "pairs"), "summary", "--campaign", str(campaign.root)],
                             capture_output=True, text=True, timeout=120)
    assert summary.returncode == 2
    assert summary.stderr == (f"pairs: error: {journal}: is a folder, not a journal file; move it out of the way "
                              "and put the journal file back (or, if there was none, remove the folder: an empty "
                              "journal is made again)\n")
    assert moved.read_bytes() == before  # nothing went to the moved file
    journal.rmdir()
    moved.rename(journal)
    again = alice.post("api/submit", json=body)
    assert again.status_code == 200 and again.json()["repeated"] is False
    assert stored(server) == {first: 4, body["showing_id"]: 4}


def raw_get(base_url: str, path: str, token: str) -> http.client.HTTPResponse:
    """GET a path exactly as written (no client-side clean-up of '..' or escapes)."""
    where = urlsplit(base_url)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    return connection.getresponse()


def test_files_are_private_and_media_urls_serve_only_the_item_open_to_the_token(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {"c1": [None] * 4})
    for media in {row["media_path"] for row in campaign.table("clips").to_pylist()} | {f"media/00/{'0' * 64}.png"}:
        path = campaign.root / media
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.write_bytes(media.encode())
        path.chmod(0o600)
    reference = campaign.table("conditions").column("reference_image")[0].as_py()
    (campaign.root / reference).parent.mkdir(mode=0o700, exist_ok=True)
    (campaign.root / reference).write_bytes(b"reference")
    (campaign.root / reference).chmod(0o600)
    for name in ("alice", "bob"):
        add_annotator(campaign, name, PASSWORD)
    save_task(campaign, AnnotationTask(gold_rate=0.0, practice=0, overlap=2))
    running = Server(campaign, AnnotationTask(gold_rate=0.0, practice=0, overlap=2))
    try:
        alice, bob = logged_in(running, "alice"), logged_in(running, "bob")
        item = alice.get("api/next_item").json()
        modes = {p.relative_to(campaign.root).as_posix(): p.stat().st_mode & 0o777 for p in campaign.root.rglob("*")}
        assert {"catalog.duckdb", "task.json", "tables/annotators.parquet", "journal/showings.jsonl"} <= set(modes)
        assert modes == {name: 0o700 if (campaign.root / name).is_dir() else 0o600 for name in modes}
        urls = [item["left"]["url"], item["right"]["url"], item["reference_url"], item["audio_url"]]
        root = str(campaign.root.resolve())
        assert all(url.startswith("/media/") and root not in url and "gradio_api" not in url for url in urls)
        for url in urls:  # the token that was given the item fetches its media
            fetched = alice.get(url.lstrip("/"))
            assert fetched.status_code == 200 and fetched.content == (campaign.root / url.lstrip("/")).read_bytes()
        left = item["left"]["url"].lstrip("/")
        assert httpx.get(running.url + left).status_code == 401  # no login
        assert bob.get(left).status_code == 403  # bob has no item open: none of alice's files are his
        own = bob.get("api/next_item").json()["left"]["url"].lstrip("/")
        assert bob.get(own).status_code == 200
        token = alice.headers["Authorization"].removeprefix("Bearer ")
        for path in ("/media/../catalog.duckdb", "/media/%2e%2e/catalog.duckdb", "/media/00/..%2F..%2Fcatalog.duckdb",
                     f"/media/00/{'0' * 64}.png", "/media/..%2Fjournal/votes.jsonl"):
            reply = raw_get(running.url, path, token)
            assert reply.status in (403, 404) and b"scrypt" not in reply.read(), path
        assert raw_get(running.url, "/media/../catalog.duckdb", token).status == 403
        clip = campaign.root / left
        clip.unlink()
        clip.symlink_to(campaign.root / "catalog.duckdb")  # a link out of media/ is never followed
        assert alice.get(left).status_code == 403
        assert requests.get(f"{running.url}gradio_api/file={clip}", cookies=alice.cookies).status_code in (401, 403)
    finally:
        running.close()
