"""Chaos: 16 voting clients while the server is killed with SIGKILL twice and the disk fills once.

Afterwards every acknowledged vote is in the journal exactly once and nothing unacknowledged is. A client
does what a careful client must: it sends a vote again (same showing, same request id) until it gets an
answer, after a dropped connection, a 503 or a restart, and logs in again when its token is gone.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx

from annotate.users import hash_password
from data_schemas import Annotator, to_table
from bench.records_campaign import make_campaign
from tests.annotate.test_app import PASSWORD, free_port
from tests.campaign.tmpfs import SmallDisk, small_tmpfs

CLIENTS = 16
CRITERIA = ("lip_sync", "expression", "motion", "overall")
# One process imports what the server needs (the slow part), then forks a fresh server process each time it
# reads a line: a restart begins from nothing but the campaign folder, without paying for the imports again.
SERVERS = """
import os, signal, sys
from pathlib import Path
from annotate.server import launch
from annotate.settings import ServerSettings
from campaign.store import Campaign
from data_schemas import AnnotationTask
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed servers are reaped at once
for _ in sys.stdin:
    if os.fork() == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        launch(Campaign(Path(sys.argv[1])), AnnotationTask(gold_rate=0.0, practice=0, overlap=16),
               ServerSettings(port=int(sys.argv[2])))
        print(os.getpid(), flush=True)
        signal.pause()
"""


class Servers:
    """Starts annotation servers on one campaign and port, one at a time, and kills them with SIGKILL."""

    def __init__(self, campaign_root: Path, port: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVERS, str(campaign_root), str(port)],
                                     cwd=Path(__file__).parents[2], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.pid: int | None = None

    def start(self) -> None:
        """A new server process; returns once it serves."""
        self.proc.stdin.write("serve\n")
        self.proc.stdin.flush()
        self.pid = int(self.proc.stdout.readline())

    def kill(self) -> None:
        """SIGKILL the running server."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            while os.path.exists(f"/proc/{self.pid}"):  # gone, its port and journal lock released
                time.sleep(0.01)
            self.pid = None

    def close(self) -> None:
        """Kill the running server, if any, and the process that starts them."""
        self.kill()
        self.proc.kill()
        self.proc.wait()


class Voter:
    """One annotator's client: vote, and send a vote again until it is answered."""

    def __init__(self, name: str, url: str, stop: threading.Event, log: "Log") -> None:
        self.name, self.stop, self.log = name, stop, log
        self.http = httpx.Client(base_url=url, timeout=10)

    def run(self) -> None:
        try:
            item, n = None, 0
            while not self.stop.is_set():
                item = item or self.call("GET", "api/next_item")
                if item["done"]:
                    return
                n += 1
                body = {"showing_id": item["showing_id"], "request_id": f"{self.name}-{n}",
                        "answers": {c: ("left", "right", "tie", "both_bad")[n % 4] for c in CRITERIA}}
                ack = self.call("POST", "api/submit", body)  # returns only once answered
                self.log.acknowledged(self.name, body["request_id"], ack)
                item = ack["next"]  # None when the server could not give one yet
        except Exception as exc:  # noqa: BLE001 - collected and asserted by the test
            self.log.errors.append(f"{self.name}: {type(exc).__name__}: {exc}")
        finally:
            self.http.close()

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        """The answer to a request, sent again through dropped connections, 503s and lost logins."""
        while True:
            try:
                if "Authorization" not in self.http.headers:
                    self.login()
                reply = self.http.request(method, path, json=body)
            except httpx.TransportError:
                self.log.count("connection lost")
                time.sleep(0.05)
                continue
            if reply.status_code == 401:  # a restart forgets every token
                self.http.headers.pop("Authorization", None)
                continue
            if reply.status_code == 503:
                self.log.count("503")
                time.sleep(0.02)
                continue
            assert reply.status_code == 200, f"{method} {path}: {reply.status_code} {reply.text}"
            return reply.json()

    def login(self) -> None:
        reply = self.http.post("api/login", json={"username": self.name, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        self.http.headers["Authorization"] = f"Bearer {reply.json()['token']}"


class Log:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acks: dict[str, str] = {}  # showing id → request id acknowledged for it
        self.events: Counter = Counter()
        self.errors: list[str] = []

    def acknowledged(self, name: str, request_id: str, ack: dict) -> None:
        with self.lock:
            assert self.acks.setdefault(ack["showing_id"], request_id) == request_id
            self.events["acknowledged"] += 1

    def count(self, event: str) -> None:
        with self.lock:
            self.events[event] += 1

    def wait_for(self, event: str, more: int, timeout: float = 60) -> None:
        """Until `more` further events of a kind happened (the clients are doing the work)."""
        target, deadline = self.events[event] + more, time.monotonic() + timeout
        while self.events[event] < target:
            assert time.monotonic() < deadline and not self.errors, (event, self.events, self.errors[:3])
            time.sleep(0.02)


def test_sixteen_clients_through_two_sigkills_and_a_full_disk(tmp_path):
    root, port = tmp_path / "campaign", free_port()
    servers = Servers(root, port)  # imports while the campaign is made
    try:
        campaign = make_campaign(root, {"c1": [None] * 9, "c2": [None] * 9})  # 72 pairs
        password_hash = hash_password(PASSWORD)
        with campaign.write("annotators") as con:  # all accounts in one transaction
            con.register("accounts", to_table([Annotator(name=f"ann{i:02d}", role="annotator",
                                                         password_hash=password_hash) for i in range(CLIENTS)],
                                              Annotator))
            con.execute("INSERT INTO annotators SELECT * FROM accounts")
        with small_tmpfs(campaign.root / "journal", "16m") as disk:
            log = chaos(servers, disk, f"http://127.0.0.1:{port}/")
            votes = campaign.table("votes").to_pylist()
            assert campaign.journal_path("votes").read_bytes().endswith(b"\n")
    finally:
        servers.close()
    assert log.events["connection lost"] > 0 and log.events["503"] > 0  # the chaos did reach the clients
    rows: dict[str, list[dict]] = defaultdict(list)
    for vote in votes:
        rows[vote["showing_id"]].append(vote)
    assert set(rows) == set(log.acks)  # every acknowledged vote, and nothing else
    for showing_id, stored in rows.items():  # each exactly once: one row per criterion, from one request
        assert sorted(v["criterion"] for v in stored) == sorted(CRITERIA), showing_id
        assert {v["request_id"] for v in stored} == {log.acks[showing_id]}, showing_id


def chaos(servers: Servers, disk: SmallDisk, url: str) -> Log:
    """16 clients vote while the server is killed twice and the disk fills once; the log once they stopped.

    A client holding an item across a kill sends its vote for that showing to the restarted server: that
    it is answered 200, not 404, is the restart keeping everyone's open item.
    """
    stop, log = threading.Event(), Log()
    threads = [threading.Thread(target=Voter(f"ann{i:02d}", url, stop, log).run) for i in range(CLIENTS)]
    try:
        servers.start()
        for thread in threads:
            thread.start()
        log.wait_for("acknowledged", 48)
        servers.kill()  # mid-flight: votes on disk acknowledged or not yet, showings just issued
        servers.start()
        log.wait_for("acknowledged", 32)
        disk.fill()  # the disk fills once: votes and new showings are refused with 503...
        log.wait_for("503", 2 * CLIENTS)
        disk.empty()  # ...until there is room again
        log.wait_for("acknowledged", 32)
        servers.kill()
        servers.start()
        log.wait_for("acknowledged", 32)
    finally:
        stop.set()  # each client finishes the vote it is sending, then stops
        for thread in threads:
            thread.join(timeout=60)
        servers.kill()
    assert log.errors == [] and not any(thread.is_alive() for thread in threads)
    return log
