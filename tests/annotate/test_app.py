"""The annotation app over real HTTP: gradio_client for the API, requests for raw routes."""

import errno
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests
from gradio_client import Client

from annotate.server import launch
from annotate.settings import ServerSettings
from annotate.simulate import Preference, simulate
from annotate.users import add_annotator
from campaign.practice import practice_answers
from campaign.store import Campaign
from data_schemas import AnnotationTask
from pairs.candidates.ingest import ingest_rows
from pairs.candidates.manifest import read_manifest
from bench.records_campaign import make_campaign

PASSWORD = "correct-horse"
ANSWERS = {"lip_sync": "left", "expression": "right", "motion": "tie", "overall": "both_bad"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def world_campaign(root: Path, manifest: Path) -> Campaign:
    campaign = Campaign.open(root, create=True)
    rows, _ = read_manifest(manifest)
    ingest_rows(campaign, rows, progress=False)
    for name, role in (("alice", "annotator"), ("bob", "annotator"), ("root", "admin")):
        add_annotator(campaign, name, PASSWORD, role)
    return campaign


class Server:
    def __init__(self, campaign: Campaign, task: AnnotationTask, **settings) -> None:
        self.running = launch(campaign, task, ServerSettings(port=free_port(), **settings))
        self.url, self.service = self.running.url, self.running.service

    def client(self, name: str) -> Client:
        return Client(self.url, auth=(name, PASSWORD), verbose=False)

    def session(self, name: str) -> requests.Session:
        session = requests.Session()
        assert session.post(self.url + "login", data={"username": name, "password": PASSWORD}).ok
        return session

    def close(self) -> None:
        self.running.close()


@pytest.fixture
def ab_server(tiny_world, tmp_path):
    server = Server(world_campaign(tmp_path / "campaign", tiny_world),
                    AnnotationTask(gold_rate=0.0, practice=0, overlap=2))
    yield server
    server.close()


def test_vote_repeat_and_wrong_annotator(ab_server):
    alice, bob = ab_server.client("alice"), ab_server.client("bob")
    item = alice.predict(api_name="/next_item")
    assert not item["done"] and item["criteria"] == ["lip_sync", "expression", "motion", "overall"]
    assert (item["progress"]["campaign_collected"], item["progress"]["campaign_needed"]) == (0, 12)
    assert item["left"]["clip"] != item["right"]["clip"]
    ack = alice.predict(item["showing_id"], "req-1", ANSWERS, None, api_name="/submit_vote")
    assert ack == {"showing_id": item["showing_id"], "repeated": False, "done": 1, "available": 6}
    again = alice.predict(item["showing_id"], "req-1", ANSWERS, None, api_name="/submit_vote")
    assert again["repeated"]
    with pytest.raises(Exception, match="403"):
        bob.predict(item["showing_id"], "req-2", ANSWERS, None, api_name="/submit_vote")
    votes = Campaign.open(ab_server.service.campaign.root).table("votes").to_pylist()
    assert len(votes) == 4
    left_is_a = votes[0]["left"] == "a"
    stored = {v["criterion"]: v["choice"] for v in votes}
    assert stored == {"lip_sync": "a" if left_is_a else "b", "expression": "b" if left_is_a else "a",
                      "motion": "tie", "overall": "both_bad"}
    assert (votes[0]["clip_a"] == item["left"]["clip"]) == left_is_a


def test_gradio_api_mistakes_are_one_line_errors_and_not_server_tracebacks(ab_server, capfd):
    alice, bob = ab_server.client("alice"), ab_server.client("bob")
    item = alice.predict(api_name="/next_item")
    with pytest.raises(Exception, match="400: request id 'None': use"):  # not stored under the text "None"
        alice.predict(item["showing_id"], None, ANSWERS, None, api_name="/submit_vote")
    with pytest.raises(Exception, match="403"):
        bob.predict(item["showing_id"], "r1", ANSWERS, None, api_name="/submit_vote")
    with pytest.raises(Exception, match="403: admins only"):
        bob.predict(api_name="/admin_stats")
    assert "Traceback" not in capfd.readouterr().err
    alice.predict(item["showing_id"], "r1", ANSWERS, None, api_name="/submit_vote")
    bobs = bob.predict(api_name="/next_item")
    assert not bob.predict(bobs["showing_id"], "r1", ANSWERS, None, api_name="/submit_vote")["repeated"]
    votes = Campaign.open(ab_server.service.campaign.root).table("votes").to_pylist()
    assert sorted({(v["annotator"], v["request_id"]) for v in votes}) == [("alice", "r1"), ("bob", "r1")]


def test_bob_cannot_answer_alices_open_item_nor_read_votes(ab_server):
    alice, bob = ab_server.client("alice"), ab_server.client("bob")
    item = alice.predict(api_name="/next_item")
    with pytest.raises(Exception, match="403"):
        bob.predict(item["showing_id"], "req-x", ANSWERS, None, api_name="/submit_vote")
    with pytest.raises(Exception, match="403: admins only"):
        bob.predict(api_name="/admin_stats")
    assert ab_server.client("root").predict(api_name="/admin_stats")["progress"]["needed"] == 12


def test_unauthenticated_and_malformed_requests_are_refused(ab_server):
    with pytest.raises(Exception):
        Client(ab_server.url, verbose=False)  # no login: not even the config is served
    with pytest.raises(Exception):
        Client(ab_server.url, auth=("alice", "wrong"), verbose=False)
    alice = ab_server.client("alice")
    item = alice.predict(api_name="/next_item")
    media = item["left"]["url"]
    assert requests.get(ab_server.url.rstrip("/") + media).status_code in (401, 403)
    session = ab_server.session("alice")
    assert session.get(ab_server.url.rstrip("/") + media).status_code == 200
    root = ab_server.service.campaign.root.resolve()
    for path in ("/etc/passwd", f"{root}/catalog.duckdb", f"{root}/journal/votes.jsonl",
                 f"{root}/media/../catalog.duckdb"):
        assert session.get(f"{ab_server.url}gradio_api/file={path}").status_code in (403, 404), path
    for answers, message in (("{not json", "400"), ([1, 2], "400"), ({"lip_sync": "up"}, "400")):
        with pytest.raises(Exception, match=message):
            alice.predict(item["showing_id"], "req-m", answers, None, api_name="/submit_vote")
    ack = alice.predict(item["showing_id"], "req-ok", ANSWERS, None, api_name="/submit_vote")
    assert ack["done"] == 1  # the server is still fine after the bad calls


def test_rating_mode(tiny_world, tmp_path):
    server = Server(world_campaign(tmp_path / "campaign", tiny_world), AnnotationTask(mode="rating", overlap=1))
    try:
        alice = server.client("alice")
        item = alice.predict(api_name="/next_item")
        assert set(item) >= {"clip", "reference_url", "audio_url", "showing_id"}
        ratings = {"lip_sync": 5, "expression": 4, "motion": 3, "overall": 4}
        assert not alice.predict(item["showing_id"], "r1", ratings, None, api_name="/submit_rating")["repeated"]
        with pytest.raises(Exception, match="400"):
            nxt = alice.predict(api_name="/next_item")
            alice.predict(nxt["showing_id"], "r2", dict(ratings, motion=9), None, api_name="/submit_rating")
        stored = server.service.campaign.table("ratings").to_pylist()
        assert {r["criterion"]: r["score"] for r in stored} == ratings
        assert {r["clip"] for r in stored} == {item["clip"]["clip"]}
    finally:
        server.close()


def test_sixteen_clients_twelve_votes_each_through_gradio(tmp_path):
    # Gradio's queue answers a call in about 2 s under this load: volume is the chaos test's (JSON API) job.
    campaign = make_campaign(tmp_path / "campaign", {"big": [None] * 11})  # 55 pairs
    names = [f"ann{i:02d}" for i in range(16)]
    for name in names:
        add_annotator(campaign, name, PASSWORD)
    server = Server(campaign, AnnotationTask(gold_rate=0.0, practice=0, overlap=16))
    errors, repeats = [], Counter()
    try:
        def annotate(name: str) -> None:
            try:
                client = server.client(name)
                for i in range(12):
                    item = client.predict(api_name="/next_item")
                    repeats[client.predict(item["showing_id"], f"{name}-{i}", ANSWERS, None,
                                           api_name="/submit_vote")["repeated"]] += 1
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(f"{name}: {exc}")

        threads = [threading.Thread(target=annotate, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.close()
    assert errors == []
    assert repeats == {False: 16 * 12}
    votes = campaign.table("votes")
    assert votes.num_rows == 16 * 12 * 4 and len(set(votes.column("showing_id").to_pylist())) == 16 * 12


SERVER = """
import sys, time
from pathlib import Path
from annotate.server import launch
from annotate.settings import ServerSettings
from annotate.simulate import Preference, simulate
from campaign.store import Campaign
from data_schemas import AnnotationTask
launch(Campaign(Path(sys.argv[1])), AnnotationTask(gold_rate=0.0, practice=0, overlap=50),
       ServerSettings(port=int(sys.argv[2])))
print("ready", flush=True)
time.sleep(600)
"""


def test_sigkill_of_the_server_loses_no_acknowledged_vote(tmp_path):
    campaign = make_campaign(tmp_path / "campaign", {"big": [None] * 12})
    for i in range(4):
        add_annotator(campaign, f"ann{i}", PASSWORD)
    port = free_port()
    root = Path(__file__).parents[2]
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(campaign.root), str(port)], cwd=root,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    acknowledged, stop = [], threading.Event()

    def annotate(name: str) -> None:
        try:
            client = Client(f"http://127.0.0.1:{port}/", auth=(name, PASSWORD), verbose=False)
            while not stop.is_set():
                item = client.predict(api_name="/next_item")
                client.predict(item["showing_id"], os.urandom(6).hex(), ANSWERS, None, api_name="/submit_vote")
                acknowledged.append(item["showing_id"])
        except Exception:  # noqa: BLE001 - the server is killed under us: that is the test
            pass

    threads = [threading.Thread(target=annotate, args=(f"ann{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.time() + 60
    while len(acknowledged) < 40 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acknowledged) >= 40
    stored = Counter(campaign.table("votes").column("showing_id").to_pylist())
    assert all(stored[s] == 4 for s in acknowledged)
    assert set(stored.values()) == {4}
    server = Server(campaign, AnnotationTask(gold_rate=0.0, practice=0, overlap=50))  # restarts on the same journal
    try:
        item = server.client("ann0").predict(api_name="/next_item")
        assert server.client("ann0").predict(item["showing_id"], "after", ANSWERS, None,
                                             api_name="/submit_vote")["done"] == stored_by(campaign, "ann0")
    finally:
        server.close()


def stored_by(campaign: Campaign, name: str) -> int:
    return len({v["showing_id"] for v in campaign.table("votes").to_pylist() if v["annotator"] == name})


def test_scores_are_hidden_unless_asked_for(tiny_world, tmp_path):
    from data_schemas import Score

    campaign = world_campaign(tmp_path / "campaign", tiny_world)
    campaign.add_scores([Score(clip=sha, scorer="sync", scorer_version="1", metric="lse_c", value=float(i))
                         for i, sha in enumerate(campaign.table("clips").column("sha256").to_pylist())])
    for show, expected in ((False, False), (True, True)):
        server = Server(campaign, AnnotationTask(gold_rate=0.0, practice=0), show_scores=show)
        try:
            item = server.client("alice").predict(api_name="/next_item")
            assert ("scores" in item["left"]) is expected
            if expected:
                assert set(item["left"]["scores"]) == {"sync/lse_c"}
        finally:
            server.close()


def test_pairs_commands_read_the_campaign_while_the_server_runs(ab_server, tmp_path):
    alice, bob = ab_server.client("alice"), ab_server.client("bob")
    for client in (alice, bob, alice, bob):
        item = client.predict(api_name="/next_item")
        client.predict(item["showing_id"], os.urandom(4).hex(), ANSWERS, None, api_name="/submit_vote")
    pairs_bin = str(Path(sys.executable).parent / "pairs")
    root = str(ab_server.service.campaign.root)
    built = subprocess.run([pairs_bin, "build", "--campaign", root, "--out", str(tmp_path / "p.parquet"),
                            "--criterion", "lip_sync", "--heldout", "0"], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    summary = subprocess.run([pairs_bin, "summary", "--campaign", root], capture_output=True, text=True, timeout=120)
    assert summary.returncode == 0 and "votes" in summary.stdout
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "p.parquet").num_rows >= 1


def api_client(server: Server, name: str):
    """An httpx client of the JSON API, logged in as `name`."""
    import httpx

    client = httpx.Client(base_url=server.url, timeout=30)
    token = client.post("api/login", json={"username": name, "password": PASSWORD}).json()["token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_json_api_login_vote_repeat_and_refusals(ab_server):
    import httpx

    anonymous = httpx.Client(base_url=ab_server.url, timeout=30)
    assert anonymous.get("api/next_item").status_code == 401
    assert anonymous.post("api/login", json={"username": "alice", "password": "nope"}).status_code == 401
    assert anonymous.get("api/next_item", headers={"Authorization": "Bearer forged"}).status_code == 401
    alice, bob = api_client(ab_server, "alice"), api_client(ab_server, "bob")
    item = alice.get("api/next_item").json()
    body = {"showing_id": item["showing_id"], "request_id": "j1", "answers": ANSWERS}
    first = alice.post("api/submit", json=body)
    assert first.status_code == 200 and first.json()["repeated"] is False
    assert first.json()["next"]["showing_id"] != item["showing_id"]  # the next item comes with the ack
    assert alice.post("api/submit", json=body).json()["repeated"] is True
    assert bob.post("api/submit", json=dict(body, request_id="j2")).status_code == 403
    other = alice.get("api/next_item").json()
    assert other["showing_id"] == first.json()["next"]["showing_id"]  # still the open one
    bad = alice.post("api/submit", json={"showing_id": other["showing_id"], "request_id": "j3",
                                         "answers": {"lip_sync": "sideways"}})
    assert bad.status_code == 400
    assert alice.post("api/submit", json={"request_id": "j4"}).status_code == 422  # malformed body
    assert bob.get("api/admin/stats").status_code == 403
    assert api_client(ab_server, "root").get("api/admin/stats").json()["progress"]["collected"] == 1
    assert ab_server.service.campaign.table("votes").num_rows == 4


def test_admins_download_the_votes_as_parquet_and_nobody_else(ab_server, monkeypatch, tmp_path):
    import httpx

    alice = api_client(ab_server, "alice")
    item = alice.get("api/next_item").json()
    alice.post("api/submit", json={"showing_id": item["showing_id"], "request_id": "d1", "answers": ANSWERS})
    assert httpx.get(ab_server.url + "admin/votes.parquet").status_code == 401
    assert alice.get("admin/votes.parquet").status_code == 403
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the file is written before it is sent
    got = api_client(ab_server, "root").get("admin/votes.parquet")
    assert got.status_code == 200 and "votes.parquet" in got.headers["content-disposition"]
    votes = pq.read_table(io.BytesIO(got.content))
    assert votes.num_rows == 4 and votes.column("retracted").to_pylist() == [False] * 4
    deadline = time.monotonic() + 10
    while list(tmp_path.glob("pd-votes-*")) and time.monotonic() < deadline:  # deleted once sent, after the body
        time.sleep(0.05)
    assert list(tmp_path.glob("pd-votes-*")) == []

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(pq, "write_table", full)
    refused = api_client(ab_server, "root").get("admin/votes.parquet")
    assert refused.status_code == 507 and "No space left on device" in refused.json()["detail"]
    assert "TMPDIR" in refused.json()["detail"] and list(tmp_path.glob("pd-votes-*")) == []


    def broken(*args, **kwargs):
        raise ValueError("not a disk problem")
    monkeypatch.setattr(pq, "write_table", broken)
    assert api_client(ab_server, "root").get("admin/votes.parquet").status_code == 500
    assert list(tmp_path.glob("pd-votes-*")) == []  # nothing left behind by any failure


def test_json_api_practice_round_feedback_and_gold_items_that_look_like_any_other(tiny_world, tmp_path):
    server = Server(world_campaign(tmp_path / "campaign", tiny_world),
                    AnnotationTask(gold_rate=0.5, practice=1, overlap=2))
    try:
        alice = api_client(server, "alice")
        item = alice.get("api/next_item").json()
        assert item["practice"] is True and item["progress"]["practice_total"] == 1
        ack = alice.post("api/submit", json={"showing_id": item["showing_id"], "request_id": "p1",
                                             "answers": ANSWERS}).json()
        assert ack["practice"] is True and ack["feedback"] and ack["done"] == 0
        assert {"criterion", "answer", "given", "correct"} <= set(ack["feedback"][0])
        assert server.service.campaign.table("votes").num_rows == 0
        # After practice, with gold feedback off, a gold item and its acknowledgement look like any other.
        keys, item = {}, ack["next"]
        for n in range(12):
            if item["done"] or len(keys) == 2:
                break
            gold = server.service.open_showing("alice").item.is_gold
            ack = alice.post("api/submit", json={"showing_id": item["showing_id"], "request_id": f"v{n}",
                                                 "answers": ANSWERS}).json()
            assert item["practice"] is False and "gold" not in json.dumps(item)
            assert set(ack) == {"showing_id", "repeated", "done", "available", "next"}
            keys[gold] = (set(item), set(item["progress"]), set(item["left"]))
            item = ack["next"]
        assert keys[True] == keys[False]
        result = simulate(server.url, server.service.campaign, 1, 2, Preference())  # practises, then votes twice
        assert (result.votes, result.errors) == (2, [])
        assert set(practice_answers(server.service.campaign).column("annotator").to_pylist()) == {"alice", "sim-01"}
    finally:
        server.close()


def test_undo_last_through_the_gradio_api(ab_server):
    alice = ab_server.client("alice")
    item = alice.predict(api_name="/next_item")
    alice.predict(item["showing_id"], "req-u1", ANSWERS, None, api_name="/submit_vote")
    with pytest.raises(Exception, match="409"):
        ab_server.client("bob").predict(item["showing_id"], api_name="/undo_last")
    again = alice.predict(item["showing_id"], api_name="/undo_last")
    shown = alice.predict(api_name="/next_item")
    assert shown["showing_id"] == again["showing_id"] != item["showing_id"]
    assert (shown["left"]["clip"], shown["right"]["clip"]) == (item["left"]["clip"], item["right"]["clip"])
    assert shown["left"]["fps"] == 25.0 and shown["left"]["duration"] > 0
    with pytest.raises(Exception, match="409"):
        alice.predict(item["showing_id"], api_name="/undo_last")
    stats = ab_server.client("root").predict(api_name="/admin_stats")
    assert stats["annotators"] == [] and stats["progress"]["collected"] == 0  # the undone vote does not count
