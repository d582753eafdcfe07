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

  // Media events do not bubble; listen in the capture phase so new items need no re-binding.
  let mirroring = false;
  function mirror(source, action) {
    if (mirroring) return;
    mirroring = true;
    for (const other of videos()) {
      if (other === source) continue;
      if (Math.abs(other.currentTime - source.currentTime) > 0.05) other.currentTime = source.currentTime;
      if (action === "play" && other.paused) other.play().catch(() => {});
      if (action === "pause" && !other.paused) other.pause();
    }
    mirroring = false;
  }
  document.addEventListener("play", (e) => { if (e.target.matches?.("video.pd-clip")) mirror(e.target, "play"); }, true);
  document.addEventListener("pause", (e) => { if (e.target.matches?.("video.pd-clip")) mirror(e.target, "pause"); }, true);
  document.addEventListener("seeked", (e) => { if (e.target.matches?.("video.pd-clip")) mirror(e.target, "seek"); }, true);
  document.addEventListener("ended", (e) => {
    if (!e.target.matches?.("video.pd-clip")) return;
    played.add(e.target.dataset.side + showing());
    const all = videos();
    if (all.every((v) => v.ended || played.has(v.dataset.side + showing()))) {
      // Loop both together, so they never drift apart.
      all.forEach((v) => { v.currentTime = 0; });
      all.forEach((v) => v.play().catch(() => {}));
    }
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
    else if (key === "r") { videos().forEach((v) => { v.currentTime = 0; v.play().catch(() => {}); }); e.preventDefault(); }
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
      videos().forEach((v) => { v.muted = true; v.currentTime = 0; v.play().catch(() => {}); });
    }
    refreshSubmit();
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
