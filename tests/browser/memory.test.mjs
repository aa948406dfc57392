// memory.test.mjs: the memory-capped case in the three engines (WebKit above all: the phones
// that enforce the tightest limits run it). NOT BUILT YET: it needs the memory budget of the
// memory issue (an explainer held to a phone-sized budget, and a clear out-of-memory error
// for a model that does not fit), which the library does not have yet. Until then these
// tests report skipped. The harness runs them as it runs demo.test.mjs: forEachEngine gives
// each test a browser, the two servers (with and without COOP/COEP) and the full-size VGG16
// at /generated/vgg16.gcam; page.responsiveness() and page.errors() work in every engine.
import { forEachEngine } from './harness.mjs';
import { randomVgg16 } from '../js/helpers.mjs';

const NOT_BUILT = 'needs the memory budget of the memory issue, not built yet (createExplainer has no memory option)';

forEachEngine((engine) => {
  engine.test('a full-size VGG16 explains within a 400 MB budget', { skip: NOT_BUILT }, async () => {});
  engine.test('a model that does not fit the budget gets a clear out-of-memory error', { skip: NOT_BUILT }, async () => {});
}, { serverFiles: async () => ({ '/generated/vgg16.gcam': await randomVgg16() }) });
