// facerec's page: people, identify a photo, live camera. Plain JavaScript, no
// build step; every action is a call to the REST API (api/openapi.yaml) with
// the key the user entered once (kept in sessionStorage: gone when the tab
// closes, never in localStorage or a cookie).
"use strict";

const KEY_STORAGE = "facerec.apiKey";
const $ = (id) => document.getElementById(id);

// ---- the API -----------------------------------------------------------------------

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, contentType) {
  const headers = {};
  const key = apiKey();
  if (key) headers["Authorization"] = "Bearer " + key;
  if (contentType) headers["Content-Type"] = contentType;
  const resp = await fetch(path, { method, headers, body });
  let data = null;
  try {
    data = await resp.json();
  } catch (_) {
    // not JSON: keep null
  }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    if (resp.status === 401) showKeyState("key needed or not accepted");
    throw new ApiError(resp.status, e.code || "http_" + resp.status, e.message || resp.statusText);
  }
  return data;
}

const personPath = (name) => "/v1/people/" + encodeURIComponent(name);
const imageType = (file) => (file.type && file.type.startsWith("image/") ? file.type : "application/octet-stream");

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", !!isError);
}

function showKeyState(text) {
  $("key-state").textContent = text || (apiKey() ? "key set for this tab" : "no key");
}

// ---- tabs ----------------------------------------------------------------------------

function showTab(name) {
  for (const b of document.querySelectorAll("button.tab")) b.classList.toggle("active", b.dataset.tab === name);
  for (const p of document.querySelectorAll(".panel")) p.classList.toggle("active", p.id === name);
  if (name === "people") refreshPeople();
  if (name !== "live") stopLive();
}

// ---- drop zones ----------------------------------------------------------------------

function dropZone(zone, input, onFiles) {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles([...e.dataTransfer.files].filter((f) => f.type === "" || f.type.startsWith("image/")));
  });
  input.addEventListener("change", () => {
    onFiles([...input.files]);
    input.value = "";
  });
}

// ---- people ----------------------------------------------------------------------------

let pendingFiles = [];

function renderPending() {
  const ul = $("pending-files");
  ul.replaceChildren(...pendingFiles.map((f) => {
    const li = document.createElement("li");
    li.textContent = f.name;
    return li;
  }));
  $("enrol").disabled = pendingFiles.length === 0 || !$("new-name").value.trim();
}

let peopleRequest = 0;  // only the newest listing is drawn

async function refreshPeople() {
  const mine = ++peopleRequest;
  let people;
  try {
    people = await api("GET", "/v1/people");
  } catch (e) {
    return setStatus("people: " + e.message, true);
  }
  if (mine !== peopleRequest) return;
  const tbody = $("people-table").querySelector("tbody");
  tbody.replaceChildren(...people.map(personRow));
  $("people-empty").hidden = people.length > 0;
  $("people-table").dataset.loaded = String(mine);
}

function personRow(p) {
  const tr = document.createElement("tr");
  tr.dataset.name = p.name;
  const name = document.createElement("td");
  name.className = "person-name";
  name.textContent = p.name;
  const n = document.createElement("td");
  n.className = "person-templates";
  n.textContent = p.templates;
  const actions = document.createElement("td");
  actions.className = "actions";

  const rename = document.createElement("button");
  rename.textContent = "Rename";
  rename.className = "rename";
  rename.addEventListener("click", () => {
    const input = document.createElement("input");
    input.className = "rename";
    input.value = p.name;
    const save = document.createElement("button");
    save.textContent = "Save";
    save.className = "rename-save";
    save.addEventListener("click", async () => {
      const to = input.value.trim();
      if (!to || to === p.name) return refreshPeople();
      try {
        await api("PATCH", personPath(p.name), JSON.stringify({ name: to }), "application/json");
        setStatus(`renamed ${p.name} to ${to}`);
      } catch (e) {
        setStatus(`rename ${p.name}: ${e.message}`, true);
      }
      refreshPeople();
    });
    input.addEventListener("keydown", (e) => e.key === "Enter" && save.click());
    name.replaceChildren(input);
    actions.replaceChildren(save);
    input.focus();
  });

  // Two clicks remove: the first arms the button for 4 s.
  const remove = document.createElement("button");
  remove.textContent = "Remove";
  remove.className = "danger remove";
  remove.addEventListener("click", async () => {
    if (!remove.classList.contains("armed")) {
      remove.classList.add("armed");
      remove.textContent = "Remove " + p.name + "?";
      setTimeout(() => {
        remove.classList.remove("armed");
        remove.textContent = "Remove";
      }, 4000);
      return;
    }
    try {
      await api("DELETE", personPath(p.name));
      setStatus("removed " + p.name);
    } catch (e) {
      setStatus(`remove ${p.name}: ${e.message}`, true);
    }
    refreshPeople();
  });
  actions.append(rename, remove);
  tr.append(name, n, actions);
  return tr;
}

async function enrolPending() {
  const name = $("new-name").value.trim();
  const files = pendingFiles;
  if (!name || files.length === 0) return;
  pendingFiles = [];
  renderPending();
  $("enrol").disabled = true;
  const log = $("enrol-log");
  log.replaceChildren();
  let added = 0;
  for (const f of files) {
    const li = document.createElement("li");
    try {
      const r = await api("POST", personPath(name) + "/faces", f, imageType(f));
      li.textContent = `${f.name}: added (quality ${r.quality.toFixed(2)}` +
        (r.faces > 1 ? `, the largest of ${r.faces} faces)` : ")");
      li.className = "added";
      ++added;
    } catch (e) {
      li.textContent = `${f.name}: skipped (${e.message})`;
      li.className = "skipped";
    }
    log.append(li);
  }
  setStatus(`enrolled ${added} of ${files.length} photo(s) of ${name}`, added === 0);
  if (added > 0) $("new-name").value = "";
  refreshPeople();
}

// ---- faces drawn over an image or a video ----------------------------------------------

// Boxes are placed in percent of the image the server saw (result.width x
// result.height), so they follow the element however it is scaled.
function drawFaces(overlay, result) {
  const boxes = result.faces.map((f) => {
    const [x1, y1, x2, y2] = f.box;
    const box = document.createElement("div");
    const known = f.identity !== null;
    box.className = "face-box" + (known ? " known" : " unknown");
    box.tabIndex = 0;
    box.dataset.identity = known ? f.identity : "";
    box.dataset.similarity = f.similarity.toFixed(3);
    box.style.left = (100 * x1) / result.width + "%";
    box.style.top = (100 * y1) / result.height + "%";
    box.style.width = (100 * (x2 - x1)) / result.width + "%";
    box.style.height = (100 * (y2 - y1)) / result.height + "%";

    const label = document.createElement("span");
    label.className = "face-label";
    const who = known ? f.identity : f.reason === "low_quality" ? "unknown (low quality)" : "unknown";
    label.textContent = `${who} ${f.similarity.toFixed(2)}`;

    const cands = document.createElement("div");
    cands.className = "candidates";
    const title = document.createElement("div");
    title.textContent = `candidates (threshold ${result.decision.threshold.toFixed(3)})`;
    const ol = document.createElement("ol");
    for (const c of f.candidates) {
      const li = document.createElement("li");
      li.textContent = `${c.identity} ${c.similarity.toFixed(3)}`;
      ol.append(li);
    }
    if (f.candidates.length === 0) title.textContent = "no candidates (empty gallery)";
    cands.append(title, ol);
    box.append(label, cands);
    return box;
  });
  overlay.replaceChildren(...boxes);
}

// ---- identify a photo ----------------------------------------------------------------------

let photoUrl = null;

async function identifyPhoto(files) {
  const f = files[0];
  if (!f) return;
  if (photoUrl) URL.revokeObjectURL(photoUrl);
  photoUrl = URL.createObjectURL(f);
  $("identify-img").src = photoUrl;
  $("identify-overlay").replaceChildren();
  $("identify-summary").textContent = "identifying " + f.name + "…";
  $("identify-summary").dataset.done = "";
  try {
    const r = await api("POST", "/v1/identify", f, imageType(f));
    drawFaces($("identify-overlay"), r);
    const known = r.faces.filter((x) => x.identity !== null).map((x) => x.identity);
    $("identify-summary").textContent =
      `${f.name}: ${r.faces.length} face(s)` + (known.length ? ": " + known.join(", ") : "") +
      ` (threshold ${r.decision.threshold.toFixed(3)})`;
    $("identify-summary").title = r.decision.reason;
    $("identify-summary").dataset.done = "1";
  } catch (e) {
    $("identify-summary").textContent = `${f.name}: ${e.message}`;
    $("identify-summary").dataset.done = "error";
  }
}

// ---- live ------------------------------------------------------------------------------------

// One canvas for every frame (its size is set per frame, as the camera's may change).
const live = { stream: null, timer: null, busy: false, frames: 0, latencies: [], canvas: document.createElement("canvas") };
const LIVE_MAX_WIDTH = 640;  // frames are downscaled before upload: smaller body, same faces

async function startLive() {
  if (live.stream) return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia)
    return setStatus("camera: the browser allows it only on https or localhost pages", true);
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (e) {
    return setStatus("camera: " + e.message, true);
  }
  const video = $("live-video");
  video.srcObject = live.stream;
  await video.play();
  $("live-start").disabled = true;
  $("live-stop").disabled = false;
  live.frames = 0;
  live.latencies = [];
  scheduleFrame();
}

function stopLive() {
  if (!live.stream) return;
  clearTimeout(live.timer);
  for (const t of live.stream.getTracks()) t.stop();
  live.stream = null;
  $("live-video").srcObject = null;
  $("live-overlay").replaceChildren();
  $("live-start").disabled = false;
  $("live-stop").disabled = true;
}

function scheduleFrame() {
  const fps = Math.min(10, Math.max(0.5, Number($("live-fps").value) || 3));
  live.timer = setTimeout(sendFrame, 1000 / fps);
}

async function sendFrame() {
  if (!live.stream) return;
  const video = $("live-video");
  if (live.busy || !video.videoWidth) return scheduleFrame();  // one request in flight at most
  const scale = Math.min(1, LIVE_MAX_WIDTH / video.videoWidth);
  const canvas = live.canvas;
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((ok) => canvas.toBlob(ok, "image/jpeg", 0.85));
  live.busy = true;
  const t0 = performance.now();
  try {
    const r = await api("POST", "/v1/identify", blob, "image/jpeg");
    if (live.stream) drawFaces($("live-overlay"), r);
    live.frames++;
    live.latencies.push(performance.now() - t0);
    if (live.latencies.length > 30) live.latencies.shift();
    const sorted = [...live.latencies].sort((a, b) => a - b);
    $("live-stats").textContent =
      `${live.frames} frames, median ${Math.round(sorted[sorted.length >> 1])} ms per request`;
  } catch (e) {
    setStatus("live: " + e.message, true);
  } finally {
    live.busy = false;
  }
  scheduleFrame();
}

// ---- start -------------------------------------------------------------------------------------

function init() {
  for (const b of document.querySelectorAll("button.tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("key-input").value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    $("key-input").value = "";
    showKeyState();
    refreshPeople();
  });
  dropZone($("drop-people"), $("people-files"), (files) => {
    pendingFiles.push(...files);
    renderPending();
  });
  $("new-name").addEventListener("input", renderPending);
  $("enrol").addEventListener("click", enrolPending);
  dropZone($("drop-identify"), $("identify-file"), identifyPhoto);
  $("live-start").addEventListener("click", startLive);
  $("live-stop").addEventListener("click", stopLive);
  showKeyState();
  refreshPeople();
}

init();
