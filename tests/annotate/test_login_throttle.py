"""Failed logins back off per account and per address."""

from annotate.login_throttle import FORGET_AFTER_S, FREE_FAILURES, MAX_WAIT_S, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_past_the_free_ones_double_the_wait_up_to_a_ceiling():
    clock = Clock()
    throttle = LoginThrottle(clock)
    for _ in range(FREE_FAILURES):
        throttle.failed("bob", "10.0.0.1")
        assert throttle.wait("bob", "10.0.0.1") == 0  # typos are free
    waits = []
    for _ in range(12):
        throttle.failed("bob", "10.0.0.1")
        waits.append(throttle.wait("bob", "10.0.0.1"))
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0] and waits[-1] == MAX_WAIT_S
    assert throttle.wait("bob", "10.0.0.2") == MAX_WAIT_S  # the account is throttled from anywhere
    assert throttle.wait("alice", "10.0.0.1") == MAX_WAIT_S  # and the address for any account
    assert throttle.wait("alice", "10.0.0.2") == 0
    clock.now += MAX_WAIT_S
    assert throttle.wait("bob", "10.0.0.1") == 0


def test_a_success_forgives_the_account_but_not_the_address():
    clock = Clock()
    throttle = LoginThrottle(clock)
    for n in range(FREE_FAILURES + 1):
        throttle.failed(f"guess{n}", "10.0.0.9")  # guessing names from one address
    throttle.failed("carol", "10.0.0.8")
    throttle.succeeded("carol")
    assert throttle.wait("carol", "10.0.0.8") == 0
    assert throttle.wait("carol", "10.0.0.9") > 0  # a valid account does not unlock its owner's address
    clock.now += FORGET_AFTER_S + 1
    assert throttle.wait("anyone", "10.0.0.9") == 0  # old failures are forgotten
