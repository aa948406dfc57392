// faults.test.mjs: the engine under faults (issue 9): a malloc that fails, a WebAssembly trap,
// streams that break, option names from Object.prototype, `worker: true` in Node, unknown
// lengths, huge images. Faults are injected by replacing the module's exported functions on
// the explainer's own instance (test-only access to `_engine.M`): the engine calls them
// through the module object, so it sees what a real failure gives.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  createExplainer, GcamError, GcamArgumentError, GcamWeightsError,
} from '../../web/index.js';
import { FIXTURES, heapBytes, requireBuilds, testImage } from './helpers.mjs';

requireBuilds();

const WEIGHTS = path.join(FIXTURES, 'model.gcam');
const BYTES = fs.readFileSync(WEIGHTS);
const PNG = fs.readFileSync(path.join(FIXTURES, 'img0.png'));
const BROKEN = 'the engine failed earlier: create a new explainer';

/** Make the module's next `count` mallocs fail; returns a function that restores it. */
function failMallocs(explainer, count, after = 0) {
  const M = explainer._engine.M;
  const malloc = M._malloc;
  let calls = 0;
  M._malloc = (n) => {
    calls++;
    return calls > after && calls <= after + count ? 0 : malloc(n);
  };
  return () => { M._malloc = malloc; return calls; };
}

/** `bytes` as a ReadableStream of `step`-byte chunks that errors after `failAt` bytes if given. */
function chunkedStream(bytes, step, failAt = Infinity) {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= failAt) return c.error(new Error('the network went away'));
      if (off >= bytes.length) return c.close();
      c.enqueue(new Uint8Array(bytes.subarray(off, off + step)));
      off += step;
    },
  });
}

const isOom = (e) => e instanceof GcamError && e.code === 'GCAM_STATUS_OUT_OF_MEMORY';
const isBroken = (e) => e instanceof GcamError && e.code === 'GCAM_STATUS_BAD_STATE' && e.message === BROKEN;

describe('finding 4: a failed allocation leaves the engine consistent', () => {
  let ref;
  before(async () => { ref = await createExplainer({ weights: WEIGHTS, threads: 1 }); });
  after(() => ref.dispose());

  test('finding 4: after a failed image malloc, no stale forward is reused (image A\'s answer for image B)', async () => {
    const ex = await createExplainer({ weights: WEIGHTS, threads: 1 });
    try {
      const a = testImage(64, 64, 1);
      const first = await ex.explain(a);
      const restore = failMallocs(ex, 1);
      await assert.rejects(ex.explain(testImage(128, 128, 2)), isOom);
      restore();
      // Reuse the heap the way the demo does: overlays and explains of images of A's size.
      // Before the fix the image record pointed at a freed block that overlay's input then
      // received, so the cached pixels became whatever overlay was last given.
      const c = testImage(64, 64, 3);
      const d = testImage(64, 64, 4);
      await ex.overlay(c, first.explanations[0]);
      const rc = await ex.explain(c);
      assert.equal(rc.forwardReused, false);
      await ex.overlay(d, first.explanations[0]);
      const rd = await ex.explain(d);
      const want = await ref.explain(d);
      assert.equal(rd.forwardReused, false, 'image D is not image C');
      assert.deepEqual(rd.logits, want.logits, 'D gets its own prediction');
      assert.deepEqual(rd.explanations[0].heatmap, want.explanations[0].heatmap);
    } finally {
      ex.dispose(); // before the fix: the same block freed twice
    }
  });

  test('finding 4: a malloc failing at any point of explain, overlay and decodeImage gives OUT_OF_MEMORY, then right answers', async () => {
    const ex = await createExplainer({ weights: WEIGHTS, threads: 1 });
    try {
      let failures = 0;
      for (let k = 0; k < 8; k++) {
        // a larger image every time, so that every buffer is reallocated
        const img = testImage(50 + 13 * k, 40 + 11 * k, 10 + k);
        const want = await ref.explain(img, { classIndex: [1, 2] });
        const wantOverlay = await ref.overlay(img, want.explanations[0]);
        const restore = failMallocs(ex, 1, k % 4);
        for (const call of [() => ex.explain(img, { classIndex: [1, 2] }), () => ex.overlay(img, want.explanations[0]),
                            () => ex.decodeImage(PNG)]) {
          try {
            await call();
          } catch (e) {
            assert.ok(isOom(e), `${e}`);
            failures++;
          }
        }
        restore();
        const got = await ex.explain(img, { classIndex: [1, 2] });
        assert.deepEqual(got.logits, want.logits, `image ${k}`);
        assert.deepEqual(got.explanations.map((x) => x.heatmap), want.explanations.map((x) => x.heatmap));
        assert.deepEqual((await ex.overlay(img, want.explanations[0])).data, wantOverlay.data);
        assert.equal((await ex.decodeImage(PNG)).width, 203);
      }
      assert.ok(failures >= 8, `${failures} injected failures were seen`);
    } finally {
      ex.dispose();
    }
  });

  test('finding 4: a malloc failing while the weights load gives OUT_OF_MEMORY', async () => {
    // the load's own mallocs from JS: the staging block, then the model info's block
    const { Engine } = await import('../../web/core.js');
    for (const nth of [1, 2]) {
      const load = Engine.prototype._load;
      Engine.prototype._load = function (...args) {
        const M = this.M;
        const malloc = M._malloc;
        let calls = 0;
        M._malloc = (n) => (++calls === nth ? 0 : malloc(n));
        return load.apply(this, args).finally(() => { M._malloc = malloc; });
      };
      try {
        await assert.rejects(createExplainer({ weights: WEIGHTS, threads: 1 }), isOom);
      } finally {
        Engine.prototype._load = load;
      }
    }
  });
});

describe('a WebAssembly trap breaks the explainer for good', () => {
  for (const threads of [1, 2]) {
    test(`issue 9 fail-safe: after a trap every call throws GCAM_STATUS_BAD_STATE (${threads} thread(s))`, async () => {
      const ex = await createExplainer({ weights: WEIGHTS, threads });
      const img = testImage(40, 40, 3);
      const good = await ex.explain(img);
      const M = ex._engine.M;
      const forward = M._gcam_state_forward_rgba;
      // a pointer past the end of the heap: the C code reading the pixels traps
      M._gcam_state_forward_rgba = (s, ptr, w, h, stride) => forward(s, 0xffff0000, w, h, stride);
      await assert.rejects(ex.explain(testImage(40, 40, 4)), (e) => {
        assert.ok(e instanceof GcamError, `a GcamError, got ${e}`);
        assert.equal(e.code, 'GCAM_STATUS_BAD_STATE');
        assert.ok(e.cause instanceof WebAssembly.RuntimeError, 'the trap is the cause');
        assert.match(e.message, /create a new explainer/);
        return true;
      });
      M._gcam_state_forward_rgba = forward;
      // never a stale or wrong answer: not for the image the state held, nor any other call
      for (const call of [() => ex.explain(img), () => ex.explain(testImage(40, 40, 4)),
                          () => ex.overlay(img, good.explanations[0]), () => ex.decodeImage(PNG)])
        await assert.rejects(call(), isBroken);
      ex.dispose();
      ex.dispose();
      // and a new explainer works
      const fresh = await createExplainer({ weights: WEIGHTS, threads });
      assert.deepEqual((await fresh.explain(img)).logits, good.logits);
      fresh.dispose();
    });
  }

  test('issue 9 fail-safe: a trap while the weights load is a GcamError', async () => {
    const { Engine } = await import('../../web/core.js');
    const load = Engine.prototype._load;
    Engine.prototype._load = function (...args) {
      const M = this.M;
      const write = M._gcam_model_loader_write;
      M._gcam_model_loader_write = (loader, ptr, n) => write(loader, 0xffff0000, n);
      return load.apply(this, args);
    };
    try {
      await assert.rejects(createExplainer({ weights: WEIGHTS, threads: 1 }),
        (e) => e instanceof GcamError && e.code === 'GCAM_STATUS_BAD_STATE' && e.cause instanceof WebAssembly.RuntimeError);
    } finally {
      Engine.prototype._load = load;
    }
  });
});

describe('finding 5: every rejection is a GcamError; stream failures are GcamWeightsError with a cause', () => {
  const isWeightsError = (re) => (e) => {
    assert.ok(e instanceof GcamWeightsError, `a GcamWeightsError, got ${e && e.constructor.name}: ${e}`);
    assert.equal(e.code, 'GCAM_STATUS_IO');
    assert.match(e.message, re);
    return true;
  };

  test('finding 5: a Response body that errors mid-way', async () => {
    const body = chunkedStream(BYTES, 50000, 100000);
    await assert.rejects(createExplainer({ weights: new Response(body) }), (e) =>
      isWeightsError(/the network went away/)(e) && e.cause instanceof Error && e.cause.message === 'the network went away');
  });

  test('finding 5: a dropped connection', async () => {
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-length': String(BYTES.length), 'content-type': 'application/octet-stream' });
      res.write(BYTES.subarray(0, 200000), () => res.socket.destroy());
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${server.address().port}/model.gcam`;
      await assert.rejects(createExplainer({ weights: url }), (e) => isWeightsError(/model\.gcam/)(e) && e.cause !== undefined);
    } finally {
      server.close();
    }
  });

  test('finding 5: an already-read or locked body', async () => {
    const used = new Response(new Uint8Array(BYTES));
    await used.arrayBuffer();
    await assert.rejects(createExplainer({ weights: used }), isWeightsError(/already read/));
    const locked = new Response(new Uint8Array(BYTES));
    locked.body.getReader();
    await assert.rejects(createExplainer({ weights: locked }), (e) => isWeightsError(/reading failed/)(e) && e.cause instanceof TypeError);
  });

  test('finding 5: a server that is not there', async () => {
    await assert.rejects(createExplainer({ weights: 'http://127.0.0.1:9/none.gcam' }),
      (e) => isWeightsError(/none\.gcam/)(e) && e.cause !== undefined);
  });

  test('finding 5: option names are own properties only (score: \'toString\', \'__proto__\' refused)', async () => {
    const ex = await createExplainer({ weights: WEIGHTS, threads: 1 });
    try {
      const img = testImage(20, 20);
      const r = await ex.explain(img);
      for (const score of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf'])
        await assert.rejects(ex.explain(img, { score }), GcamArgumentError, score);
      for (const colormap of ['toString', '__proto__', 'constructor'])
        await assert.rejects(ex.overlay(img, r.explanations[0], { colormap }), GcamArgumentError, colormap);
      await assert.rejects(ex.explain(img, 'logit'), GcamArgumentError);
      assert.equal((await ex.explain(img, null)).explanations.length, 1, 'null options are the defaults');
      for (const wasmUrl of [{ toString: 'x' }, Object.create({ simd: 'nowhere.wasm' })]) {
        // inherited build names are not URLs of ours: the package's own build is used
        const other = await createExplainer({ weights: WEIGHTS, threads: 1, wasmUrl });
        other.dispose();
      }
    } finally {
      ex.dispose();
    }
  });

  test('finding 5: errors cross the worker boundary as GcamErrors, whatever name they carry', async () => {
    const { deserializeError, serializeError } = await import('../../web/errors.js');
    for (const name of ['toString', '__proto__', 'constructor', 'Error', 'TypeError', undefined]) {
      const e = deserializeError({ name, code: undefined, message: 'm' });
      assert.ok(e instanceof GcamError, `${String(name)}: ${e}`);
      assert.equal(e.message, 'm');
    }
    const sent = serializeError(new GcamWeightsError('weights x: reading failed', { cause: new TypeError('terminated') }));
    const back = deserializeError(structuredClone(sent));
    assert.ok(back instanceof GcamWeightsError);
    assert.equal(back.code, 'GCAM_STATUS_IO');
    assert.equal(back.cause.message, 'terminated');
    const trap = deserializeError(structuredClone(serializeError(new WebAssembly.RuntimeError('unreachable'), 'explain')));
    assert.ok(trap instanceof GcamError && trap.code === 'GCAM_STATUS_BAD_STATE', `${trap}`);
  });

  test('finding 5: worker: true after a threaded explainer exists is a GcamArgumentError, not a ReferenceError', async () => {
    const threaded = await createExplainer({ weights: WEIGHTS, threads: 2 });
    assert.equal(threaded.info.threads, 2);
    try {
      await assert.rejects(createExplainer({ weights: WEIGHTS, worker: true }),
        (e) => e instanceof GcamArgumentError && /Web Workers/.test(e.message));
    } finally {
      threaded.dispose();
    }
  });

  test('finding 5: a stream without a length stages no more than one chunk in the heap', async () => {
    const known = await createExplainer({ weights: WEIGHTS, threads: 1 });
    const withLength = heapBytes(known);
    known.dispose();
    const response = new Response(chunkedStream(BYTES, 65536)); // no content-length
    assert.equal(response.headers.get('content-length'), null);
    const seen = [];
    const unknown = await createExplainer({ weights: response, threads: 1, onProgress: (p) => seen.push(p.total) });
    try {
      assert.equal(seen[0], 0, 'the size is unknown while loading');
      assert.equal(heapBytes(unknown), withLength, 'the same heap as with a known length');
    } finally {
      unknown.dispose();
    }
  });

  test('finding 5: image buffers shrink back after one huge image', async () => {
    const ex = await createExplainer({ weights: WEIGHTS, threads: 1 });
    try {
      const big = testImage(4096, 4096, 5); // 64 MiB of pixels
      const r = await ex.explain(big);
      await ex.overlay(big, r.explanations[0]);
      const small = testImage(64, 64, 6);
      const again = await ex.explain(small);
      assert.equal(again.forwardReused, false);
      // what the engine keeps is small again: a 60 MiB block fits without growing the heap
      const held = Object.values(ex._engine.buffers).reduce((sum, b) => sum + b.bytes, 0);
      assert.ok(held < (1 << 20), `the engine holds ${held} bytes of buffers after a 64x64 image`);
      const M = ex._engine.M;
      const before = heapBytes(ex);
      const probe = M._malloc(60 << 20);
      assert.ok(probe, 'the probe is had');
      assert.equal(heapBytes(ex), before, 'the space the huge image took is free again');
      M._free(probe);
      // the same huge image twice in a row still reuses its forward
      await ex.explain(big);
      assert.equal((await ex.explain(big, { classIndex: 3 })).forwardReused, true);
    } finally {
      ex.dispose();
    }
  });
});
