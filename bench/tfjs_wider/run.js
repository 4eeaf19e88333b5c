#!/usr/bin/env node
// WIDER subset detections from the npm TF.js face detectors, run by their own
// runtime (@tensorflow/tfjs 4.22.0, WASM backend, one thread) so that each
// model runs as its authors ship it. Writes one JSON line per image:
//   {"image": "0--Parade/x.jpg", "detections": [[x, y, w, h, score], ...], "ms": 12.3}
// (boxes in the photo's pixels; ms, cpu_ms: wall and process CPU time of the detector call
// alone, JPEG decoding excluded).
// Score with score.py, which feeds tools/wider_official_ap.py.
//
//   node run.js --model M [--size N] [--score 0.05] [--tiles S] [--limit K] \
//     --images DIR --gt wider_face_val_bbx_gt.txt --out dets.jsonl
//
// Models (see README.md for where each comes from):
//   ssd        face-api ssd_mobilenetv1 (input fixed 512x512 by its 5118 stored anchors)
//   tiny       face-api tiny_face_detector (--size: any multiple of 32; face-api's default 416)
//   faceboxes  human-models faceboxes (any input; --size = the long side, 0 = the photo as is)
//   blazeface-back / blazeface-front   human-models BlazeFace 256 / 128, decoded as Human does
// --tiles S: also run the detector on windows of S x S pixels of the photo (50% overlap) and
// merge them with the whole view by NMS (IoU 0.4): a multi-scale try for the fixed-size nets.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');
const jpeg = require('jpeg-js');

function args() {
  const a = { model: '', size: 0, score: 0.05, tiles: 0, limit: 0, maxFaces: 750, norm: 'human', images: '', gt: '', out: '' };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) {
    const k = v[i];
    const next = () => { if (i + 1 >= v.length) throw new Error(`${k} needs a value`); return v[++i]; };
    if (k === '--model') a.model = next();
    else if (k === '--size') a.size = Number(next());
    else if (k === '--score') a.score = Number(next());
    else if (k === '--tiles') a.tiles = Number(next());
    else if (k === '--limit') a.limit = Number(next());
    else if (k === '--max-faces') a.maxFaces = Number(next());
    else if (k === '--norm') a.norm = next();
    else if (k === '--images') a.images = next();
    else if (k === '--gt') a.gt = next();
    else if (k === '--out') a.out = next();
    else throw new Error(`unknown option ${k}`);
  }
  if (!a.model || !a.images || !a.gt || !a.out) throw new Error('usage: run.js --model M --images DIR --gt GT.txt --out OUT.jsonl');
  return a;
}

// The image list of the WIDER ground-truth txt: path, count, that many box lines.
function widerImages(gtPath) {
  const lines = fs.readFileSync(gtPath, 'utf8').split(/\r?\n/);
  const out = [];
  for (let i = 0; i < lines.length;) {
    const p = lines[i].trim();
    if (!p) { i++; continue; }
    const n = parseInt(lines[i + 1], 10);
    if (!Number.isFinite(n)) throw new Error(`${gtPath}:${i + 2}: not a face count`);
    out.push(p);
    i += 2 + Math.max(n, 1);
  }
  return out;
}

// A graph model from model.json + its .bin files, without a file:// handler.
async function loadGraph(jsonPath) {
  const j = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const specs = [];
  const bufs = [];
  for (const g of j.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) bufs.push(fs.readFileSync(path.join(path.dirname(jsonPath), p)));
  }
  const all = Buffer.concat(bufs);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: j.modelTopology, weightSpecs: specs, weightData, format: j.format,
    generatedBy: j.generatedBy, convertedBy: j.convertedBy, signature: j.signature, userDefinedMetadata: j.userDefinedMetadata,
  }));
}

function iou(a, b) {  // [x1, y1, x2, y2]
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

function nms(dets, thr, max) {  // dets: [x, y, w, h, score]
  const order = dets.slice().sort((p, q) => q[4] - p[4]);
  const kept = [];
  for (const d of order) {
    const bd = [d[0], d[1], d[0] + d[2], d[1] + d[3]];
    if (kept.every((k) => iou([k[0], k[1], k[0] + k[2], k[1] + k[3]], bd) <= thr)) kept.push(d);
    if (kept.length >= max) break;
  }
  return kept;
}

// Each detector: async (img: int32 tensor [H, W, 3]) => [[x, y, w, h, score], ...] in img's pixels.
async function makeDetector(a, modelDir) {
  if (a.model === 'ssd' || a.model === 'tiny') {
    const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
    const dir = path.join(__dirname, 'node_modules/@vladmandic/face-api/model');
    if (a.model === 'ssd') {
      await faceapi.nets.ssdMobilenetv1.loadFromDisk(dir);
      // face-api's own defaults are minConfidence 0.5, maxResults 100; lowered for AP.
      const opt = new faceapi.SsdMobilenetv1Options({ minConfidence: a.score, maxResults: a.maxFaces });
      return async (img) => (await faceapi.detectAllFaces(img, opt)).map((d) => [d.box.x, d.box.y, d.box.width, d.box.height, d.score]);
    }
    await faceapi.nets.tinyFaceDetector.loadFromDisk(dir);
    const opt = new faceapi.TinyFaceDetectorOptions({ inputSize: a.size || 416, scoreThreshold: a.score });
    return async (img) => (await faceapi.detectAllFaces(img, opt)).map((d) => [d.box.x, d.box.y, d.box.width, d.box.height, d.score]);
  }
  if (a.model === 'faceboxes') {
    const model = await loadGraph(path.join(modelDir, 'faceboxes.json'));
    // The graph ends in its own NMS, kept as shipped: TropComplique's export keeps boxes with
    // score >= 0.05 (Const nms/map/while/GreaterEqual/y), IoU 0.3, at most 200 per image.
    return async (img) => {
      const [H, W] = img.shape;
      const s = a.size ? a.size / Math.max(H, W) : 1;
      const h = Math.round(H * s);
      const wd = Math.round(W * s);
      const input = tf.tidy(() => {
        const x = s === 1 ? img : tf.image.resizeBilinear(img, [h, wd]);
        return tf.cast(tf.clipByValue(tf.round(x), 0, 255), 'int32').expandDims(0);
      });
      const out = await model.executeAsync({ image_tensor: input }, ['boxes', 'scores', 'num_boxes']);
      const boxes = await out[0].array();
      const scores = await out[1].data();
      const n = (await out[2].data())[0];
      tf.dispose([input, ...out]);
      const dets = [];
      for (let i = 0; i < n; i++) {
        const [y1, x1, y2, x2] = boxes[0][i];  // normalised [ymin, xmin, ymax, xmax]
        dets.push([x1 * W, y1 * H, (x2 - x1) * W, (y2 - y1) * H, scores[i]]);
      }
      return dets;
    };
  }
  if (a.model === 'blazeface-back' || a.model === 'blazeface-front') {
    const model = await loadGraph(path.join(modelDir, `${a.model}.json`));
    const S = model.inputs[0].shape[2];
    // Human's facemeshutil.generateAnchors: strides S/16 and S/8, 2 and 6 anchors per cell.
    const anchors = [];
    [[S / 16, 2], [S / 8, 6]].forEach(([stride, per]) => {
      const g = Math.floor((S + stride - 1) / stride);
      for (let gy = 0; gy < g; gy++) for (let gx = 0; gx < g; gx++) for (let n = 0; n < per; n++) anchors.push([stride * (gx + 0.5), stride * (gy + 0.5)]);
    });
    const anchorsT = tf.tensor2d(anchors);
    // Human's blazeface.ts: iouThreshold 0.1 (its face.detector default); minConfidence lowered for AP.
    const iouThr = 0.1;
    return async (img) => {
      const [H, W] = img.shape;
      const [boxesT, scoresT] = tf.tidy(() => {
        const r = tf.image.resizeBilinear(tf.cast(img, 'float32').expandDims(0), [S, S]);
        // Human feeds x/127.5 - 0.5; MediaPipe's own spec is [-1, 1] (--norm mediapipe).
        const x = a.norm === 'mediapipe' ? tf.sub(tf.div(r, 127.5), 1) : tf.sub(tf.div(r, 127.5), 0.5);
        const res = model.execute(x);
        const sorted = res.slice().sort((p, q) => p.size - q.size);
        const c384 = tf.concat([sorted[0], sorted[2]], 2);
        const c512 = tf.concat([sorted[1], sorted[3]], 2);
        const b = tf.squeeze(tf.concat([c512, c384], 1), [0]);
        const centers = tf.add(tf.slice(b, [0, 1], [-1, 2]), anchorsT);
        const half = tf.div(tf.slice(b, [0, 3], [-1, 2]), 2);
        const boxes = tf.concat([tf.sub(centers, half), tf.add(centers, half)], 1);  // x1, y1, x2, y2
        const scores = tf.squeeze(tf.sigmoid(tf.slice(b, [0, 0], [-1, 1])), [1]);
        return [boxes, scores];
      });
      // tf's NMS wants [y1, x1, y2, x2]; IoU is symmetric in the axes, so x/y order does not matter.
      const keep = await tf.image.nonMaxSuppressionAsync(boxesT, scoresT, a.maxFaces, iouThr, a.score);
      const k = await keep.data();
      const bx = await boxesT.data();
      const sc = await scoresT.data();
      tf.dispose([keep, boxesT, scoresT]);
      const sx = W / S;
      const sy = H / S;
      return Array.from(k, (i) => [bx[4 * i] * sx, bx[4 * i + 1] * sy, (bx[4 * i + 2] - bx[4 * i]) * sx, (bx[4 * i + 3] - bx[4 * i + 1]) * sy, sc[i]]);
    };
  }
  throw new Error(`unknown model ${a.model}`);
}

async function main() {
  const a = args();
  wasm.setThreadsCount(1);
  await tf.setBackend('wasm');
  await tf.ready();
  const modelDir = process.env.HUMAN_MODELS || path.join(__dirname, 'models/human-models/package/models');
  const t0 = Date.now();
  const detect = await makeDetector(a, modelDir);
  const loadMs = Date.now() - t0;
  let list = widerImages(a.gt);
  if (a.limit) list = list.slice(0, a.limit);
  const out = fs.openSync(a.out, 'w');
  const times = [];
  const cpus = [];
  for (const p of list) {
    const raw = jpeg.decode(fs.readFileSync(path.join(a.images, p)), { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
    const img = tf.tensor3d(Int32Array.from(raw.data), [raw.height, raw.width, 3], 'int32');
    const t = process.hrtime.bigint();
    const c = process.cpuUsage();
    let dets = await detect(img);
    if (a.tiles > 0) {
      const S = a.tiles;
      const step = Math.max(1, Math.floor(S / 2));
      const xs = [];
      const ys = [];
      for (let x = 0; ; x += step) { xs.push(Math.min(x, Math.max(0, raw.width - S))); if (x + S >= raw.width) break; }
      for (let y = 0; ; y += step) { ys.push(Math.min(y, Math.max(0, raw.height - S))); if (y + S >= raw.height) break; }
      if (xs.length * ys.length > 1) {
        for (const y0 of [...new Set(ys)]) {
          for (const x0 of [...new Set(xs)]) {
            const crop = tf.slice(img, [y0, x0, 0], [Math.min(S, raw.height - y0), Math.min(S, raw.width - x0), 3]);
            for (const d of await detect(crop)) dets.push([d[0] + x0, d[1] + y0, d[2], d[3], d[4]]);
            crop.dispose();
          }
        }
        dets = nms(dets, 0.4, a.maxFaces);
      }
    }
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    const cu = process.cpuUsage(c);
    const cpuMs = (cu.user + cu.system) / 1e3;
    cpus.push(cpuMs);
    img.dispose();
    times.push(ms);
    fs.writeSync(out, `${JSON.stringify({ image: p, detections: dets.slice(0, a.maxFaces).map((d) => d.map((v) => Math.round(v * 1e4) / 1e4)), ms: Math.round(ms * 100) / 100, cpu_ms: Math.round(cpuMs * 100) / 100 })}\n`);
  }
  fs.closeSync(out);
  times.sort((p, q) => p - q);
  cpus.sort((p, q) => p - q);
  const med = (v) => v[Math.floor(v.length / 2)];
  process.stderr.write(`${a.model}: ${list.length} images, load ${loadMs} ms, median ${med(times).toFixed(1)} ms wall, `
    + `${med(cpus).toFixed(1)} ms CPU per image, backend ${tf.getBackend()} (1 thread)\n`);
}

main().catch((e) => { process.stderr.write(`error: ${e.stack || e}\n`); process.exit(1); });
