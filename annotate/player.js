// Synced A/B playback, "played once" tracking and keyboard shortcuts for the annotation app.
// Loaded once in the page head; works on whatever item the server renders into #pd-player.
(() => {
  const KEYS = { a: "left", b: "right", t: "tie", x: "both_bad" };
  let active = 0;
  const played = new Set();

  const videos = () => Array.from(document.querySelectorAll("#pd-player video.pd-clip"));
  const criteria = () => Array.from(document.querySelectorAll(".pd-criterion"));
  const showing = () => document.querySelector("#pd-player [data-showing]")?.dataset.showing || "";

  function answered() {
    return criteria().every((row) => row.querySelector("input:checked"));
  }

  function refreshSubmit() {
    if (!document.querySelector(".pd-criterion.pd-active")) highlight();
    const button = document.querySelector("#pd-submit");
    if (!button) return;
    const clips = videos();
    const watched = clips.length > 0 && clips.every((v) => played.has(v.dataset.side + showing()));
    const ready = watched && answered();
    // Write only on change: the page observer reacts to every DOM write.
    if (button.disabled !== !ready) button.disabled = !ready;
    const hint = document.querySelector("#pd-hint");
    const text = ready ? "Ready: press Enter to submit." : watched ? "Answer every criterion." :
      "Watch the clip(s) to the end once.";
    if (hint && hint.textContent !== text) hint.textContent = text;
  }

  function highlight() {
    criteria().forEach((row, i) => {
      if (row.classList.contains("pd-active") !== (i === active)) row.classList.toggle("pd-active", i === active);
    });
  }

  // The first clip is the clock: it has the controls, the others follow its play, pause, seek and loop,
  // and drift is corrected on every time update. Media events do not bubble, so listen in the capture
  // phase: new items need no re-binding.
  const isMaster = (v) => v.matches?.("video.pd-clip") && videos()[0] === v;
  const followers = () => videos().slice(1);
  function follow(master, seek) {
    for (const v of followers()) {
      if (seek || Math.abs(v.currentTime - master.currentTime) > 0.08) v.currentTime = master.currentTime;
      if (master.paused !== v.paused) (master.paused ? v.pause() : v.play().catch(() => {}));
    }
  }
  document.addEventListener("play", (e) => { if (isMaster(e.target)) follow(e.target, false); }, true);
  document.addEventListener("pause", (e) => { if (isMaster(e.target)) follow(e.target, false); }, true);
  document.addEventListener("seeked", (e) => { if (isMaster(e.target)) follow(e.target, true); }, true);
  document.addEventListener("timeupdate", (e) => { if (isMaster(e.target)) follow(e.target, false); }, true);
  document.addEventListener("ended", (e) => {
    if (!isMaster(e.target)) return;
    videos().forEach((v) => played.add(v.dataset.side + showing()));  // they played through together
    e.target.currentTime = 0;
    e.target.play().catch(() => {});
    refreshSubmit();
  }, true);
  document.addEventListener("change", () => setTimeout(refreshSubmit, 0), true);
  document.addEventListener("click", () => setTimeout(refreshSubmit, 50), true);

  function choose(value) {
    const row = criteria()[active];
    const input = row?.querySelector(`input[value="${value}"]`);
    if (!input) return;
    input.click();
    active = Math.min(active + 1, criteria().length - 1);
    highlight();
    setTimeout(refreshSubmit, 50);
  }

  document.addEventListener("keydown", (e) => {
    const target = e.target;
    if (target.matches?.("input[type=text], textarea, [contenteditable]") || e.ctrlKey || e.metaKey || e.altKey) {
      return; // typing a skip reason is not a shortcut
    }
    const key = e.key.toLowerCase();
    if (KEYS[key]) { choose(KEYS[key]); e.preventDefault(); return; }
    if (/^[1-5]$/.test(key)) { choose(key); e.preventDefault(); return; }
    if (key === "arrowdown" || key === "j") { active = Math.min(active + 1, criteria().length - 1); highlight(); e.preventDefault(); }
    else if (key === "arrowup" || key === "k") { active = Math.max(active - 1, 0); highlight(); e.preventDefault(); }
    else if (key === "enter") { const b = document.querySelector("#pd-submit"); if (b && !b.disabled) b.click(); e.preventDefault(); }
    else if (key === "s") { document.querySelector("#pd-skip")?.click(); e.preventDefault(); }
    else if (key === "r") { const m = videos()[0]; if (m) { m.currentTime = 0; m.play().catch(() => {}); } e.preventDefault(); }
    else if (key === " ") {
      const first = videos()[0];
      if (first) { first.paused ? first.play().catch(() => {}) : first.pause(); }
      e.preventDefault();
    }
  });

  // A new item arrives: reset the cursor and start both clips (muted, so autoplay is allowed).
  new MutationObserver(() => {
    const id = showing();
    if (id && id !== window.__pdShowing) {
      window.__pdShowing = id;
      active = 0;
      highlight();
      const master = videos()[0];
      videos().forEach((v) => { v.muted = true; });
      if (master) { master.currentTime = 0; master.play().catch(() => {}); }
    }
    refreshSubmit();
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
