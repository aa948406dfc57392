// monitor.js: put first in every HTML page the test server sends (a classic script, so it
// runs before the page's own modules), in every engine alike. Two things the engines do not
// all give us from outside:
// - responsiveness: the gaps between the callbacks of a setTimeout(0) heartbeat (how long the
//   main thread could not run a task) and between requestAnimationFrame callbacks (how long no
//   frame was painted). Chromium alone has the 'longtask' entry; these work everywhere. A gap
//   also happens when the machine gives the browser no CPU (the test machine is shared), so
//   a control heartbeat runs in a worker (beat-worker.js): the part of a main-thread gap
//   during which the control could not run either is the machine's, the rest is "blocked".
// - the page's errors: console.error, uncaught exceptions and rejections (WebDriver classic
//   has no console log).
// The test reads `await window.__harness.responsiveness()` and `.errors` through evaluate().
(() => {
  if (window.__harness) return;
  const KEPT_MS = 50; // main-thread gaps longer than this are kept, to be compared with the control
  const now = () => performance.timeOrigin + performance.now(); // epoch ms, as in the worker

  function gapRecorder(schedule) {
    const rec = { beats: 0, max: 0, long: [], since: now(), last: now() };
    const beat = () => {
      const t = now();
      const gap = t - rec.last;
      rec.last = t;
      rec.beats++;
      if (gap > rec.max) rec.max = gap;
      if (gap > KEPT_MS && rec.long.length < 5000) rec.long.push([t - gap, gap]);
      schedule(beat);
    };
    schedule(beat);
    return rec;
  }

  const control = { started: Infinity, gaps: [], worker: null, error: null };
  try {
    control.worker = new Worker('/__harness/beat-worker.js');
    control.worker.onerror = (e) => { control.error = `control worker: ${e.message || 'failed'}`; };
  } catch (e) {
    control.error = `control worker: ${e.message}`;
  }
  function fetchControl() {
    if (!control.worker || control.error) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 5000);
      control.worker.onmessage = ({ data }) => {
        clearTimeout(timer);
        control.started = data.started;
        control.gaps.push(...data.gaps);
        resolve();
      };
      control.worker.postMessage('gaps');
    });
  }
  /** the part of [s, s + len] when the control heartbeat ran: the main thread alone was stuck */
  function blockedPart(s, len) {
    const e = s + len;
    let starved = 0;
    for (const [cs, cl] of control.gaps) starved += Math.max(0, Math.min(e, cs + cl) - Math.max(s, cs));
    // before the control started there is no evidence: that part counts as blocked
    return len - Math.min(starved, Math.max(0, e - Math.max(s, control.started)));
  }

  const r1 = (x) => Math.round(x * 10) / 10;
  const harness = {
    errors: [],
    states: [],
    heartbeat: gapRecorder((f) => setTimeout(f, 0)),
    frames: gapRecorder((f) => requestAnimationFrame(f)),
    /**
     * Since the page started (or reset()): the largest gaps in ms, raw and (heartbeat)
     * blocked, i.e. less what the control worker shows was the machine's. `reset`: start a
     * new window right after this reading.
     */
    async responsiveness({ reset = false } = {}) {
      await fetchControl();
      const t = now();
      const hb = harness.heartbeat;
      const long = hb.long.map(([s, len]) => [Math.round(s - hb.since), Math.round(len), Math.round(blockedPart(s, len))]);
      const maxBlocked = long.reduce((m, g) => Math.max(m, g[2]), long.length ? 0 : hb.max);
      const out = {
        heartbeat: { maxGapMs: r1(hb.max), maxBlockedMs: r1(Math.min(hb.max, maxBlocked)), beats: hb.beats,
                     windowMs: Math.round(t - hb.since), longGaps: long, control: control.error ||
                     `${control.gaps.length} control gaps > 20 ms, ${r1(control.gaps.reduce((s, g) => s + g[1], 0))} ms in all` },
        states: harness.states.slice(),
        frames: { maxGapMs: r1(harness.frames.max), beats: harness.frames.beats, windowMs: Math.round(t - harness.frames.since) },
      };
      if (reset) harness.reset();
      return out;
    },
    reset() {
      for (const r of [harness.heartbeat, harness.frames]) {
        r.beats = 0; r.max = 0; r.long = []; r.since = now(); r.last = now();
      }
      harness.states = [];
    },
  };
  window.__harness = harness;

  // when <body data-state> changed (the demo's contract), to place the gaps: [ms, state]
  new MutationObserver((records) => {
    for (const r of records) if (r.target === document.body) harness.states.push([Math.round(now() - harness.heartbeat.since), document.body.dataset.state]);
  }).observe(document.documentElement, { subtree: true, attributes: true, attributeFilter: ['data-state'] });

  const text = (v) => (v instanceof Error ? `${v.name}: ${v.message}` : typeof v === 'string' ? v : (() => {
    try { return JSON.stringify(v); } catch { return String(v); }
  })());
  const consoleError = console.error.bind(console);
  console.error = (...args) => {
    harness.errors.push(`console.error: ${args.map(text).join(' ')}`);
    consoleError(...args);
  };
  addEventListener('error', (e) => harness.errors.push(`uncaught: ${text(e.error || e.message)}`));
  addEventListener('unhandledrejection', (e) => harness.errors.push(`unhandled rejection: ${text(e.reason)}`));
})();
