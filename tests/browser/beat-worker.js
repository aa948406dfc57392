// beat-worker.js: the monitor's control thread (see monitor.js). A setTimeout(0) heartbeat in
// a worker of the page: when this thread too could not run, the machine (not the page's main
// thread) was busy. Gaps over 20 ms go back to the page as [start, length] in epoch ms.
const now = () => performance.timeOrigin + performance.now();
const GAP_MS = 20;
let last = now();
let gaps = [];
const started = last;
(function beat() {
  const t = now();
  if (t - last > GAP_MS && gaps.length < 5000) gaps.push([last, t - last]);
  last = t;
  setTimeout(beat, 0);
})();
onmessage = () => {
  postMessage({ started, gaps });
  gaps = [];
};
