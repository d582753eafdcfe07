import subprocess
import sys
from pathlib import Path

import pytest

from campaign.store import Campaign
from annotate.users import add_annotator, annotators, authenticate, disable_annotator, password_matches
from data_schemas import UserError

BIN = Path(sys.executable).parent


def test_passwords_are_salted_hashes(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    alice = add_annotator(campaign, "alice", "correct horse", "admin")
    bob = add_annotator(campaign, "bob", "correct horse")
    assert "correct horse" not in alice.password_hash
    assert alice.password_hash != bob.password_hash  # different salts
    assert password_matches("correct horse", alice.password_hash)
    assert not password_matches("wrong horse", alice.password_hash)
    assert authenticate(campaign, "alice", "correct horse").role == "admin"
    assert authenticate(campaign, "alice", "nope") is None
    assert authenticate(campaign, "carol", "correct horse") is None


def test_disable_blocks_login_and_readding_keeps_creation_time(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    created = add_annotator(campaign, "bob", "password1").created_at
    disable_annotator(campaign, "bob")
    assert annotators(campaign)["bob"].disabled
    assert authenticate(campaign, "bob", "password1") is None
    again = add_annotator(campaign, "bob", "password2")
    assert again.created_at == created and not again.disabled
    assert authenticate(campaign, "bob", "password2") is not None


def test_bad_accounts_are_refused(tmp_path):
    campaign = Campaign.open(tmp_path / "c", create=True)
    with pytest.raises(UserError, match="shorter than 8"):
        add_annotator(campaign, "bob", "short")
    with pytest.raises(UserError, match="'root' is not one of annotator, admin"):
        add_annotator(campaign, "bob", "password1", role="root")
    with pytest.raises(UserError, match="no user 'nobody'"):
        disable_annotator(campaign, "nobody")


def test_users_cli(tmp_path):
    Campaign.open(tmp_path / "c", create=True)
    (tmp_path / "pw").write_text("s3cret-pass\n")
    annotate = str(BIN / "annotate")
    common = ["--campaign", str(tmp_path / "c")]
    added = subprocess.run([annotate, "users", "add", "alice", "--role", "admin", "--password-file",
                            str(tmp_path / "pw"), *common], capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    assert subprocess.run([annotate, "users", "disable", "alice", *common]).returncode == 0
    listed = subprocess.run([annotate, "users", "list", *common], capture_output=True, text=True).stdout
    assert "alice" in listed and "admin" in listed and "no" in listed
    no_tty = subprocess.run([annotate, "users", "add", "bob", *common], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL)
    assert no_tty.returncode == 2 and "pass --password-file" in no_tty.stderr
    assert authenticate(Campaign.open(tmp_path / "c"), "alice", "s3cret-pass") is None  # disabled
    again = subprocess.run([annotate, "users", "add", "alice", "--password-file", str(tmp_path / "pw"), *common],
                           capture_output=True, text=True)
    assert again.returncode == 0 and f"user alice existed: password reset, role admin → annotator, enabled again in " \
        f"{tmp_path / 'c'}" in " ".join(again.stdout.split())


@pytest.mark.parametrize("content, message", [
    (b"first-password\nsecond-password\n", "more than one line; write the password alone on the first line"),
    (b"            \n", "the password is blank"),
    (b"\xff\xfe-not-text", "not UTF-8 text"),
])
def test_a_password_file_nobody_could_type_at_the_login_is_refused(tmp_path, content, message):
    from annotate.cli import _read_password

    (tmp_path / "pw").write_bytes(content)
    with pytest.raises(UserError, match=message):
        _read_password("alice", tmp_path / "pw")
    with pytest.raises(UserError, match="password file not found"):
        _read_password("alice", tmp_path)


def test_unknown_and_disabled_names_cost_the_same_scrypt_work(tmp_path):
    import time

    campaign = Campaign.open(tmp_path / "c", create=True)
    add_annotator(campaign, "alice", "correct horse")
    add_annotator(campaign, "bob", "correct horse")
    disable_annotator(campaign, "bob")

    def seconds(name: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            assert authenticate(campaign, name, "wrong horse") is None
            times.append(time.perf_counter() - started)
        return sorted(times)[2]

    known, unknown, disabled = seconds("alice"), seconds("nobody"), seconds("bob")
    assert unknown > 0.6 * known and disabled > 0.6 * known  # before: 3 ms for unknown names, 40 ms for known
