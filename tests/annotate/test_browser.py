"""A real browser on the annotation app: Debian's Chromium driven by Playwright."""

import shutil
from pathlib import Path

import pytest

from data_schemas import AnnotationTask
from tests.annotate.test_app import PASSWORD, Server, world_campaign

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (.ci/run installs it)")


def test_log_in_watch_both_clips_and_vote_with_the_keyboard(tiny_world, tmp_path):
    server = Server(world_campaign(tmp_path / "campaign", tiny_world), AnnotationTask(gold_rate=0.0, overlap=1))
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 1400})
            page.goto(server.url)
            page.fill("input[type=text]", "alice")
            page.fill("input[type=password]", PASSWORD)
            page.click("button:has-text('Login')")
            page.wait_for_selector("#pd-player video.pd-clip", state="attached", timeout=30_000)
            showing = page.get_attribute("#pd-player [data-showing]", "data-showing")
            assert page.is_disabled("#pd-submit")
            # Both clips must have played through once (the script then loops them together).
            page.wait_for_function("document.querySelector('#pd-hint').textContent.startsWith('Answer')",
                                   timeout=30_000)
            state = "Array.from(document.querySelectorAll('video.pd-clip')).map(v => [v.currentTime, v.paused])"
            page.wait_for_timeout(300)  # into the second loop
            (t_left, left_paused), (t_right, right_paused) = page.evaluate(state)
            assert not left_paused and not right_paused and abs(t_left - t_right) < 0.15  # looping together
            page.evaluate("document.querySelector('video.pd-clip').pause()")
            page.wait_for_timeout(200)
            assert [paused for _, paused in page.evaluate(state)] == [True, True]  # pausing A pauses B
            page.evaluate("document.querySelector('video.pd-clip').currentTime = 0.5")
            page.wait_for_timeout(300)
            assert all(abs(t - 0.5) < 0.05 for t, _ in page.evaluate(state))  # seeking A seeks B
            page.evaluate("document.querySelector('video.pd-clip').play()")
            page.click("body", position={"x": 5, "y": 5})  # focus the page, not a text box
            for key in ("a", "b", "t", "x"):  # lip sync A, expression B, motion tie, overall both bad
                page.keyboard.press(key)
            page.wait_for_function("!document.querySelector('#pd-submit').disabled", timeout=10_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "annotation-ab.png"), full_page=True)
            page.keyboard.press("Enter")
            page.wait_for_function(f"document.querySelector('#pd-player [data-showing]') && "
                                   f"document.querySelector('#pd-player [data-showing]').dataset.showing !== "
                                   f"'{showing}'", timeout=20_000)
            browser.close()
        votes = server.service.campaign.table("votes").to_pylist()
        assert {v["showing_id"] for v in votes} == {showing}
        left = votes[0]["left"]
        right = "b" if left == "a" else "a"
        assert {v["criterion"]: v["choice"] for v in votes} == {
            "lip_sync": left, "expression": right, "motion": "tie", "overall": "both_bad"}
        assert all(v["annotator"] == "alice" for v in votes)
    finally:
        server.close()
