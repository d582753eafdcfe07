"""Sessions end when they expire, when their account is disabled, or when its password changes."""

import pytest

from annotate.sessions import Accounts, Sessions
from annotate.users import add_annotator, annotators, disable_annotator
from campaign.store import Campaign


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def campaign(tmp_path) -> Campaign:
    campaign = Campaign.open(tmp_path / "c", create=True)
    for name in ("alice", "bob", "carol"):
        add_annotator(campaign, name, "password-1")
    return campaign


def test_tokens_end_on_expiry_logout_disable_and_new_password(campaign):
    clock = Clock()
    sessions = Sessions(Accounts(campaign, check_every=0.0), lifetime_s=3600, clock=clock)
    token = {name: sessions.issue(account) for name, account in annotators(campaign).items()}
    assert {sessions.user(t) for t in token.values()} == {"alice", "bob", "carol"}
    assert sessions.user("forged") is None
    disable_annotator(campaign, "bob")
    add_annotator(campaign, "carol", "password-2")
    assert sessions.user(token["bob"]) is None and sessions.user(token["carol"]) is None
    assert sessions.user(token["alice"]) == "alice"
    assert sessions.end(token["alice"]) and sessions.user(token["alice"]) is None
    fresh = sessions.issue(annotators(campaign)["carol"])
    clock.now += 3599
    assert sessions.user(fresh) == "carol"
    clock.now += 1
    assert sessions.user(fresh) is None  # expired


def test_gradio_sessions_are_swept_the_same_way(campaign):
    clock = Clock()
    sessions = Sessions(Accounts(campaign, check_every=0.0), lifetime_s=100, clock=clock)
    gradio_tokens = {"t-alice": "alice", "t-bob": "bob", "t-carol": "carol"}
    sessions.follow_gradio(gradio_tokens)
    sessions.sweep()
    assert len(gradio_tokens) == 3
    disable_annotator(campaign, "bob")
    add_annotator(campaign, "carol", "password-2")
    clock.now += 1
    sessions.sweep()
    assert gradio_tokens == {"t-alice": "alice"}
    gradio_tokens["t-carol-2"] = "carol"  # logged in again with the new password
    clock.now += 1
    sessions.sweep()
    assert set(gradio_tokens) == {"t-alice", "t-carol-2"}
    clock.now += 99
    sessions.sweep()
    assert gradio_tokens == {"t-carol-2": "carol"}  # alice's session is 100 s old


def test_accounts_are_reread_only_when_the_snapshot_changes(campaign, monkeypatch):
    clock = Clock()
    accounts = Accounts(campaign, check_every=2.0, clock=clock)
    reads = []
    monkeypatch.setattr("annotate.sessions.annotators", lambda c: reads.append(1) or annotators(c))
    accounts.current()
    accounts.current()
    clock.now += 2
    accounts.current()  # looked again, the file is the same
    assert len(reads) == 1
    disable_annotator(campaign, "alice")
    assert not accounts.current()["alice"].disabled  # not looked at again yet
    clock.now += 2
    assert accounts.current()["alice"].disabled and len(reads) == 2


def test_an_account_made_after_the_server_looked_can_log_in_at_once(campaign):
    clock = Clock()
    sessions = Sessions(Accounts(campaign, check_every=3600.0), lifetime_s=100, clock=clock)
    assert "dave" not in sessions.accounts.current()
    dave = add_annotator(campaign, "dave", "password-1")  # e.g. `annotate serve --simulate` adds accounts
    assert sessions.user(sessions.issue(dave)) == "dave"
    gradio_tokens = {}
    sessions.follow_gradio(gradio_tokens)
    add_annotator(campaign, "erin", "password-1")
    gradio_tokens["t-erin"] = "erin"
    sessions.sweep()
    assert gradio_tokens == {"t-erin": "erin"}
