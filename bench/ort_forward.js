// Images per second of ONNX Runtime (npm onnxruntime-node, CPU) on an ONNX
// file: bench/forward.c's second baseline. The bench target installs the
// package into build/ort (never the build or the tests).
// Usage: node ort_forward.js MODEL.onnx C H W BATCH THREADS
// Prints one number; exits non-zero when onnxruntime-node is missing.
'use strict';
const path = require('path');

let ort;
try {
  ort = require(path.resolve(process.env.ORT_DIR || 'build/ort',
                             'node_modules/onnxruntime-node'));
} catch (e) {
  process.stderr.write(`ort_forward: onnxruntime-node not installed: ${e.message}\n`);
  process.exit(2);
}

async function main() {
  const [model, c, h, w, batch, threads] = process.argv.slice(2).map(
      (a, i) => (i ? parseInt(a, 10) : a));
  // as ORT is deployed: all graph optimisations, its own intra-op pool of
  // `threads`, no inter-op parallelism
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const n = batch * c * h * w;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++)
    data[i] = ((i * 2654435761) % 1000) / 1000;
  const feeds = {[sess.inputNames[0]]: new ort.Tensor('float32', data,
                                                      [batch, c, h, w])};
  for (let i = 0; i < 3; i++) await sess.run(feeds); // warm-up
  // the best of 3 one-second rounds, as the machine is shared
  let best = 0;
  for (let round = 0; round < 3; round++) {
    let runs = 0;
    const t0 = process.hrtime.bigint();
    let t;
    do {
      await sess.run(feeds);
      runs++;
      t = Number(process.hrtime.bigint() - t0) / 1e9;
    } while (t < 1.0 || runs < 3);
    best = Math.max(best, runs * batch / t);
  }
  console.log(best.toFixed(1));
}

main().catch((e) => {
  process.stderr.write(`ort_forward: ${e.message}\n`);
  process.exit(1);
});
