// The annotation page's player: the clips and the driving audio locked together, slow motion, frame steps,
// a loopable timeline, mouth zoom, segment marks, the watch gate and the keyboard. Loaded once in the page head;
// works on whatever item the server renders into #pd-player (no re-binding per item: listeners are delegated).
//
// The first clip is the clock. Every other clip and the audio follow it: play, pause, seek and speed are
// applied to all of them at once, and a per-frame check pulls a follower back when it drifts (a nudge of its
// speed below one frame, a seek above), so sound and pictures stay within a frame at any speed. Sound takes
// longer to start than pictures (the audio output must fill its buffers after every seek), so playback starts
// with the audio and the clips join it the moment its time moves.
(() => {
  const KEYS = { a: "left", b: "right", t: "tie", x: "both_bad" };
  const RATES = [0.25, 0.5, 1];
  const st = {
    showing: null, rate: 1, loop: null, zoom: false, sound: "audio", soundBlocked: false,
    watched: 0, lastT: null, active: 0, lastShowing: "", lastSince: 0,
    waiting: null, // {from, until}: the clips wait, paused at `from`, for the sound's time to move
    soundDrift: null, resyncAfter: 0, // smoothed audio − clock time; no restart before resyncAfter
    marks: [], // {clip: left | right | clip, criterion, start_s, end_s}: sent with the answers
  };

  let settledAt = 0; // before this (performance.now()), a fresh seek is still settling: do not judge drift

  const $ = (selector) => document.querySelector(selector);
  const item = () => $("#pd-player .pd-item");
  const videos = () => Array.from(document.querySelectorAll("#pd-player video.pd-clip"));
  const audio = () => $("#pd-player audio.pd-audio");
  const clock = () => videos()[0];
  const media = () => [...videos(), audio()].filter(Boolean);
  const criteria = () => Array.from(document.querySelectorAll(".pd-criterion"));
  const showing = () => $("#pd-player [data-showing]")?.dataset.showing ?? null;
  const shown = (selector) => { const el = $(selector); return el && el.offsetParent !== null ? el : null; };
  // After a practice (or gold) answer the page shows its known answers on the same item, with Continue.
  const reviewing = () => shown("#pd-continue");
  const fps = () => parseFloat(item()?.dataset.fps) || 25;
  const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

  function duration() {
    const known = videos().map((v) => v.duration).filter((d) => Number.isFinite(d) && d > 0);
    return known.length ? Math.min(...known) : parseFloat(item()?.dataset.duration) || 0;
  }

  // -- playback of everything together ---------------------------------------------------------------

  function tryPlay(m) {
    m.play().catch((err) => {
      // Browsers hold back sound until the page was clicked: play muted and say how to hear it.
      if (m === audio() && err && err.name === "NotAllowedError" && !m.muted) {
        st.soundBlocked = true;
        applySound();
        m.play().catch(() => {});
      }
    });
  }

  const playing = () => Boolean(st.waiting) || (clock() ? !clock().paused : false);
  const soundUsable = (a, t) => a && !a.error && (!Number.isFinite(a.duration) || t < a.duration - 0.05);

  function playAll() {
    const c = clock();
    if (!c) return;
    let start = c.currentTime;
    if (st.loop && (start < st.loop[0] || start >= st.loop[1] - 0.001)) start = st.loop[0];
    else if (c.ended || start >= duration() - 0.001) start = 0;
    startTogether(start);
  }

  // Everything to time t; the sound starts first and the clips join it the moment its time moves (sound takes
  // longer to start than pictures). What offset remains is taken out by the clips' speed (see tick).
  function startTogether(t) {
    seekAll(t);
    media().forEach((m) => { m.playbackRate = st.rate; });
    const a = audio();
    if (soundUsable(a, t)) {
      videos().forEach((v) => v.pause());
      st.waiting = { from: t, until: performance.now() + 1000 };
      tryPlay(a);
    } else {
      st.waiting = null;
      videos().forEach(tryPlay);
    }
  }

  function joinSound() {
    const a = audio();
    if (a && !a.paused && a.currentTime <= st.waiting.from + 0.001 && performance.now() < st.waiting.until) return;
    st.waiting = null;
    // Starting the clips in one go, from where they already wait, keeps them in step with each other.
    videos().forEach(tryPlay);
    st.lastT = clock().currentTime;
    st.soundDrift = null;
    settledAt = performance.now() + 100;
  }

  function pauseAll() {
    st.waiting = null;
    media().forEach((m) => m.pause());
    const c = clock();
    if (c) media().forEach((m) => { if (m !== c) m.currentTime = c.currentTime; });
  }

  function seekAll(t) {
    const end = duration();
    t = clamp(t, 0, end > 0 ? end - 0.001 : Math.max(t, 0));
    media().forEach((m) => { m.currentTime = t; });
    st.lastT = t;
    settledAt = performance.now() + 150;
    drawTime(t);
  }

  function step(direction) {
    const c = clock();
    if (!c) return;
    pauseAll();
    seekAll(c.currentTime + direction / fps());
  }

  function setRate(rate) {
    st.rate = rate;
    media().forEach((m) => { m.preservesPitch = true; m.playbackRate = rate; });
    document.querySelectorAll("#pd-player .pd-rate").forEach((b) => {
      b.setAttribute("aria-pressed", String(parseFloat(b.dataset.rate) === rate));
    });
  }

  function changeRate(direction) {
    const i = RATES.indexOf(st.rate);
    setRate(RATES[clamp((i < 0 ? RATES.length - 1 : i) + direction, 0, RATES.length - 1)]);
  }

  function applySound() {
    const a = audio();
    if (a) a.muted = st.sound !== "audio" || st.soundBlocked;
    videos().forEach((v) => { v.muted = st.sound !== v.dataset.side; });
    const select = $("#pd-player select.pd-sound");
    if (select && select.value !== st.sound) select.value = st.sound;
    const note = $("#pd-player .pd-sound-note");
    if (note) note.hidden = !(st.soundBlocked && st.sound === "audio");
  }

  function unblockSound() {
    if (!st.soundBlocked) return;
    st.soundBlocked = false;
    applySound(); // it kept playing, muted, in step: unmuting is enough
  }

  function setLoop(edge) {
    const c = clock();
    if (!c) return;
    const t = c.currentTime, end = duration();
    if (edge === "clear") st.loop = null;
    else if (edge === "in") st.loop = [t, st.loop && st.loop[1] > t + 0.05 ? st.loop[1] : end];
    else st.loop = [st.loop && st.loop[0] < t - 0.05 ? st.loop[0] : 0, Math.max(t, 0.05)];
    drawLoop();
  }

  function drawLoop() {
    const span = $("#pd-player .pd-loop-span"), end = duration();
    if (!span) return;
    span.hidden = !st.loop || !end;
    if (st.loop && end) {
      span.style.left = `${(st.loop[0] / end) * 100}%`;
      span.style.width = `${((st.loop[1] - st.loop[0]) / end) * 100}%`;
    }
  }

  function drawTime(t) {
    const seek = $("#pd-player .pd-seek");
    if (seek && document.activeElement !== seek) {
      const end = duration();
      if (end && seek.max !== end.toFixed(3)) seek.max = end.toFixed(3);
      const value = t.toFixed(3);
      if (seek.value !== value) seek.value = value;
    }
    const label = $("#pd-player .pd-time");
    const text = `${t.toFixed(2)} s · frame ${Math.floor(t * fps() + 1e-6) + 1}`;
    if (label && label.textContent !== text) label.textContent = text;
  }

  // -- segment marks: where a clip fails the highlighted criterion ------------------------------------------
  // A mark covers the loop span (set by I/O, or by dragging on the lane under the timeline), else the current
  // second. The marks live here until the answers go: every change is written, as JSON, into the hidden
  // #pd-marks box that the Submit button sends.

  const criterionNames = () => (item()?.dataset.criteria || "").split(",").filter(Boolean);
  const markButtons = () => Array.from(document.querySelectorAll("#pd-player [data-act=mark]"));
  // What the server takes: no later than its stored duration (the page's video may report a little more).
  const markEnd = () => Math.min(duration(), parseFloat(item()?.dataset.duration) || Infinity);
  const ms = (t) => Math.floor(t * 1000 + 1e-6) / 1000;

  function addMark(clip) {
    const c = clock(), criterion = criterionNames()[st.active];
    if (!c || !clip || !criterion) return;
    const second = Math.floor(c.currentTime + 1e-6);
    const [from, to] = st.loop || [second, second + 1];
    const end = markEnd(), start = ms(clamp(from, 0, end)), stop = ms(clamp(to, 0, end));
    if (!(stop > start)) return;
    st.marks.push({ clip, criterion, start_s: start, end_s: stop });
    marksChanged();
  }

  function removeMark(index) {
    st.marks.splice(index, 1);
    marksChanged();
  }

  function marksChanged() {
    drawMarks();
    const box = $("#pd-marks textarea, #pd-marks input");
    const text = st.marks.length ? JSON.stringify(st.marks) : "";
    if (box && box.value !== text) {
      box.value = text;
      box.dispatchEvent(new Event("input", { bubbles: true })); // so Gradio holds the value it will send
    }
  }

  function drawMarks() {
    const lane = $("#pd-player .pd-mark-lane"), list = $("#pd-player .pd-mark-list"), end = markEnd();
    if (!lane || !list) return;
    const buttons = markButtons(), order = (clip) => buttons.findIndex((b) => b.dataset.clip === clip);
    const label = (m) => `${buttons[order(m.clip)]?.dataset.label || m.clip} · ${m.criterion.replace(/_/g, " ")} ` +
      `${m.start_s.toFixed(2)}–${m.end_s.toFixed(2)} s`;
    lane.replaceChildren(...st.marks.map((m) => {
      const span = document.createElement("div");
      span.className = "pd-mark";
      span.dataset.order = String(order(m.clip));
      span.title = label(m);
      span.style.left = `${(m.start_s / end) * 100}%`;
      span.style.width = `${((m.end_s - m.start_s) / end) * 100}%`;
      return span;
    }));
    list.replaceChildren(...st.marks.map((m, i) => {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.dataset.act = "unmark";
      remove.dataset.index = String(i);
      remove.title = "remove this mark";
      remove.textContent = `✕ ${label(m)}`;
      return remove;
    }));
  }

  // Dragging on the lane sets the loop span, the one span the player has: marks, loops and replays share it.
  let dragFrom = null;
  function laneTime(e) {
    const box = e.target.closest(".pd-mark-lane").getBoundingClientRect();
    return clamp((e.clientX - box.left) / Math.max(box.width, 1), 0, 1) * duration();
  }
  document.addEventListener("pointerdown", (e) => {
    if (!e.target.closest?.("#pd-player .pd-mark-lane")) return;
    e.target.setPointerCapture?.(e.pointerId);
    dragFrom = laneTime(e);
  }, true);
  document.addEventListener("pointermove", (e) => {
    if (dragFrom === null || !e.target.closest?.(".pd-mark-lane")) return;
    const t = laneTime(e);
    st.loop = [Math.min(dragFrom, t), Math.max(dragFrom, t)];
    drawLoop();
  }, true);
  document.addEventListener("pointerup", () => {
    if (dragFrom === null) return;
    dragFrom = null;
    if (st.loop && st.loop[1] - st.loop[0] < 0.05) st.loop = null; // a click, not a drag
    drawLoop();
  }, true);

  // -- mouth zoom: the same region scale on every clip, from its stored face track ---------------------

  function applyZoom() {
    for (const v of videos()) {
      if (!st.zoom) { v.style.transform = ""; v.style.transformOrigin = ""; delete v.dataset.zoom; continue; }
      const box = (v.dataset.mouth || "").split(",").filter(Boolean).map(Number);
      let cx = 0.5, cy = 0.63, scale = 2.5; // no face track: a centred crop of the lower face
      if (box.length === 4 && box.every(Number.isFinite)) {
        cx = (box[0] + box[2]) / 2;
        cy = (box[1] + box[3]) / 2;
        scale = clamp(0.55 / Math.max(box[2] - box[0], (box[3] - box[1]) * 1.5, 0.01), 2, 4);
      }
      const half = 0.5 / scale;
      cx = clamp(cx, half, 1 - half);
      cy = clamp(cy, half, 1 - half);
      v.style.transformOrigin = `${cx * 100}% ${cy * 100}%`;
      v.style.transform = `translate(${(0.5 - cx) * 100}%, ${(0.5 - cy) * 100}%) scale(${scale})`;
      v.dataset.zoom = scale.toFixed(2);
    }
    item()?.classList.toggle("pd-zoomed", st.zoom);
    $("#pd-player [data-act=zoom]")?.setAttribute("aria-pressed", String(st.zoom));
  }

  // -- the per-frame check: followers, loop span, watch gate --------------------------------------------

  function tick() {
    requestAnimationFrame(tick);
    const c = clock();
    if (!c) return;
    if (st.waiting) { joinSound(); return; }
    const t = c.currentTime;
    // The gate counts only media time that played while the page was visible (not seeks, not a background tab).
    if (document.visibilityState === "visible" && !c.paused && !c.seeking && st.lastT !== null) {
      const advanced = t - st.lastT;
      if (advanced > 0 && advanced < 0.5) st.watched += advanced;
    }
    st.lastT = t;
    if (st.loop && !c.paused && t >= st.loop[1]) { startTogether(st.loop[0]); return; }
    if (!c.paused && !c.seeking && performance.now() > settledAt) {
      const frame = 1 / fps(), a = audio();
      // The clips follow the sound: its smoothed offset sets the speed of all clips together (a few per cent,
      // so they stay in step with each other); the audio's own speed is never touched (each change restarts
      // its time-stretcher, which makes it fall behind). Its clock moves in output-buffer steps: hence the smoothing.
      let clipRate = st.rate;
      if (a && !a.paused && !a.seeking && !a.ended && !a.error && t < a.duration) {
        const drift = a.currentTime - t;
        st.soundDrift = st.soundDrift === null ? drift : 0.8 * st.soundDrift + 0.2 * drift;
        if (Math.abs(st.soundDrift) > 2 * frame && performance.now() > st.resyncAfter) {
          st.resyncAfter = performance.now() + 1000;
          startTogether(t); // the sound slipped (a stall): start everything here again, together
          return;
        }
        if (Math.abs(st.soundDrift) > 0.003) clipRate = st.rate * (1 + clamp(st.soundDrift * 2, -0.08, 0.08));
      }
      const quantised = Math.round(clipRate * 100) / 100;
      if (c.playbackRate !== quantised) c.playbackRate = quantised;
      for (const v of videos()) {
        if (v === c || v.seeking || v.ended) continue;
        const drift = v.currentTime - t;
        let rate = quantised;
        if (Math.abs(drift) > 0.75 * frame) v.currentTime = t;
        else if (Math.abs(drift) > 0.002) rate = quantised * (1 - Math.sign(drift) * (Math.abs(drift) > 0.25 * frame ? 0.03 : 0.01));
        if (v.playbackRate !== rate) v.playbackRate = rate;
        if (v.paused) tryPlay(v);
      }
    }
    drawTime(t);
    refreshSubmit();
  }

  // -- the form: watch gate, answers, submit, undo --------------------------------------------------------

  function missing() {
    return criteria().filter((row) => !row.querySelector("input:checked"))
      .map((row) => row.querySelector("[data-testid=block-info], .block-info, span")?.textContent?.trim() || "");
  }

  function watchedEnough() {
    const end = duration();
    return videos().length > 0 && end > 0 && st.watched >= end - 1.5 / fps();
  }

  function blockedReason() {
    if (!watchedEnough()) {
      return `watch the clips to the end once with the page in view (${st.watched.toFixed(1)} of ` +
        `${duration().toFixed(1)} s watched)`;
    }
    const left = missing();
    return left.length ? `answer ${left.join(", ")} (click a row, or use ↑ ↓ and the answer keys)` : "";
  }

  let blockedUntil = 0;
  function refreshSubmit() {
    highlight();
    const hint = $("#pd-hint");
    if (reviewing()) { // submit is hidden (or gone) until Continue
      const text = "Read the known answers, then press Enter to continue.";
      if (hint && hint.textContent !== text) hint.textContent = text;
      return;
    }
    const button = $("#pd-submit");
    if (!button || !item()) return;
    const reason = blockedReason();
    // Write only on change: the page observer reacts to every DOM write.
    if (button.disabled !== Boolean(reason)) button.disabled = Boolean(reason);
    const blocked = performance.now() < blockedUntil;
    const text = !reason ? "Ready: press Enter to submit." : (blocked ? "Not yet: " : "To submit: ") + reason + ".";
    if (hint && hint.textContent !== text) hint.textContent = text;
    if (hint && hint.classList.contains("pd-blocked") !== blocked) hint.classList.toggle("pd-blocked", blocked);
    refreshUndo();
  }

  function refreshUndo() {
    const button = $("#pd-undo"), progress = $("#pd-progress .pd-progress");
    if (!button || !progress) return;
    const last = progress.dataset.lastShowing || "";
    if (last !== st.lastShowing) { st.lastShowing = last; st.lastSince = performance.now(); }
    const left = last ? parseFloat(progress.dataset.undoSeconds || "60") - (performance.now() - st.lastSince) / 1000 : 0;
    const usable = left > 0;
    if (button.disabled !== !usable) button.disabled = !usable;
    const text = usable ? `Undo last (U) ${Math.ceil(left)} s` : "Undo last (U)";
    if (button.textContent !== text) button.textContent = text;
  }

  function highlight() {
    const rows = criteria();
    st.active = clamp(st.active, 0, Math.max(rows.length - 1, 0));
    rows.forEach((row, i) => {
      if (row.classList.contains("pd-active") !== (i === st.active)) row.classList.toggle("pd-active", i === st.active);
    });
  }

  function choose(value) {
    const row = criteria()[st.active];
    const input = row?.querySelector(`input[value="${value}"]`);
    if (!input) return;
    input.click();
    st.active = Math.min(st.active + 1, criteria().length - 1);
    highlight();
  }

  function trySubmit() {
    const next = reviewing();
    if (next) { next.click(); return; }
    const button = $("#pd-submit");
    if (!button) return;
    if (!button.disabled) { button.click(); return; }
    blockedUntil = performance.now() + 4000; // say why, visibly, for a few seconds
    refreshSubmit();
  }

  // -- events ------------------------------------------------------------------------------------------

  // Media events do not bubble: listen in the capture phase.
  document.addEventListener("ended", (e) => {
    if (e.target !== clock()) return;
    startTogether(st.loop ? st.loop[0] : 0);
  }, true);
  document.addEventListener("loadedmetadata", (e) => {
    if (e.target.closest?.("#pd-player")) { e.target.playbackRate = st.rate; e.target.preservesPitch = true; drawLoop(); }
  }, true);

  document.addEventListener("click", (e) => {
    const act = e.target.closest?.("#pd-player [data-act]");
    if (act) {
      const name = act.dataset.act;
      if (name === "play") (playing() ? pauseAll() : playAll());
      else if (name === "back") step(-1);
      else if (name === "forward") step(1);
      else if (name === "zoom") { st.zoom = !st.zoom; applyZoom(); }
      else if (name.startsWith("loop-")) setLoop(name.slice(5));
      else if (name === "mark") addMark(act.dataset.clip);
      else if (name === "unmark") removeMark(parseInt(act.dataset.index, 10));
      return;
    }
    const rate = e.target.closest?.("#pd-player .pd-rate");
    if (rate) { setRate(parseFloat(rate.dataset.rate)); return; }
    const row = e.target.closest?.(".pd-criterion");
    if (row) { st.active = criteria().indexOf(row); highlight(); }
  }, true);
  document.addEventListener("pointerdown", unblockSound, true);
  document.addEventListener("change", (e) => {
    if (e.target.matches?.("#pd-player select.pd-sound")) { st.sound = e.target.value; st.soundBlocked = false; applySound(); }
  }, true);
  document.addEventListener("input", (e) => {
    if (e.target.matches?.("#pd-player .pd-seek")) (playing() ? startTogether : seekAll)(parseFloat(e.target.value));
  }, true);

  document.addEventListener("keydown", (e) => {
    unblockSound();
    const target = e.target;
    if (target.matches?.("input[type=text], textarea, select, [contenteditable]") || e.ctrlKey || e.metaKey ||
        e.altKey) {
      return; // typing a skip reason is not a shortcut
    }
    const key = e.key.toLowerCase();
    const act = {
      "[": () => changeRate(-1), "]": () => changeRate(1), ",": () => step(-1), ".": () => step(1),
      z: () => { st.zoom = !st.zoom; applyZoom(); }, i: () => setLoop("in"), o: () => setLoop("out"),
      l: () => setLoop("clear"), " ": () => (playing() ? pauseAll() : playAll()),
      m: () => addMark(markButtons()[e.shiftKey ? 1 : 0]?.dataset.clip),
      r: () => startTogether(st.loop ? st.loop[0] : 0), enter: trySubmit,
      s: () => shown("#pd-skip")?.click(), u: () => { const b = shown("#pd-undo"); if (b && !b.disabled) b.click(); },
      arrowup: () => { st.active = Math.max(st.active - 1, 0); highlight(); },
      arrowdown: () => { st.active = Math.min(st.active + 1, criteria().length - 1); highlight(); },
    }[key];
    if (KEYS[key]) choose(KEYS[key]);
    else if (/^[1-5]$/.test(key)) choose(key);
    else if (act) act();
    else return;
    e.preventDefault();
  });

  // A new item: start it from the top, all together, with the annotator's speed, zoom and sound kept.
  function onItem() {
    const id = showing();
    if (id === st.showing) return;
    st.showing = id;
    st.active = 0; st.watched = 0; st.lastT = null; st.loop = null; st.marks = [];
    marksChanged();
    if (!id) return;
    setRate(st.rate);
    applySound();
    applyZoom();
    drawLoop();
    playAll();
    refreshSubmit();
  }
  new MutationObserver(onItem).observe(document.documentElement, { childList: true, subtree: true });
  requestAnimationFrame(tick);

  // For tests and debugging: the player's state, read-only.
  window.pdPlayer = {
    state: () => ({ ...st, marks: st.marks.map((m) => ({ ...m })), duration: duration(), fps: fps() }),
  };
})();
