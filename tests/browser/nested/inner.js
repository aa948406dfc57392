// inner.js (stress_nested_workers.mjs): answers its parent worker.
onmessage = () => postMessage('hi back');
