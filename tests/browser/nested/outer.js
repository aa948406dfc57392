// outer.js (stress_nested_workers.mjs): a worker that constructs one nested module worker and
// says when the nested one answered. Says 'constructing' first, on a BroadcastChannel, so a
// constructor that never returns is told apart from a worker that never ran.
const trace = new BroadcastChannel('nested-trace');
onmessage = () => {
  trace.postMessage('constructing');
  const w = new Worker(new URL('inner.js', location.href), { type: 'module' });
  trace.postMessage('constructed');
  w.onmessage = () => postMessage('inner answered');
  w.postMessage('hi');
};
