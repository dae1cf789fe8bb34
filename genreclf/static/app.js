// genreclf's page: send each chosen or dropped file to /invocations (its bytes
// as base64) and draw the answer: the top genres as bars, and a strip of the
// genre of each window over the track's time. No build step, no library.
"use strict";

const palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                 "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
let genres = [];
let topK = 3;

function colour(genre) {
  const i = genres.indexOf(genre);
  return palette[(i < 0 ? genres.length : i) % palette.length];
}

function element(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function drawBars(card, record) {
  for (let k = 1; record["genre_" + k] !== undefined; k++) {
    const genre = record["genre_" + k];
    const p = record["probability_" + k];
    const bar = element("div", {class: "bar", "data-genre": genre});
    bar.append(element("span", {class: "label"}, genre));
    const track = element("span", {class: "track"});
    const fill = element("span", {class: "fill"});
    fill.style.display = "block";
    fill.style.width = (100 * p).toFixed(1) + "%";
    fill.style.background = colour(genre);
    track.append(fill);
    bar.append(track, element("span", {class: "value"}, (100 * p).toFixed(1) + " %"));
    card.append(bar);
  }
}

function drawStrip(card, windows) {
  if (!windows || !windows.start.length) return;
  const total = Math.max(...windows.end);
  const strip = element("div", {class: "strip", "aria-label": "genre over time"});
  windows.start.forEach((start, i) => {
    const next = i + 1 < windows.start.length ? windows.start[i + 1] : windows.end[i];
    const seg = element("span", {class: "seg", "data-genre": windows.genre[i],
      title: `${start.toFixed(1)}-${windows.end[i].toFixed(1)} s: ${windows.genre[i]} ` +
             `(${(100 * windows.probability[i]).toFixed(0)} %)`});
    seg.style.left = (100 * start / total) + "%";
    seg.style.width = (100 * (next - start) / total) + "%";
    seg.style.background = colour(windows.genre[i]);
    strip.append(seg);
  });
  const axis = element("div", {class: "axis"});
  axis.append(element("span", {}, "0 s"), element("span", {}, total.toFixed(1) + " s"));
  card.append(strip, axis);
}

async function classify(file) {
  const card = element("section", {class: "result", "data-file": file.name, "data-state": "busy"});
  const status = element("p", {class: "status"}, "listening...");
  card.append(element("h2", {}, file.name), status);
  document.getElementById("results").append(card);
  try {
    const body = JSON.stringify({
      dataframe_split: {columns: ["audio", "filename"], data: [[base64(await file.arrayBuffer()), file.name]]},
      params: {top_k: topK, windows: true},
    });
    const answer = await fetch("invocations", {method: "POST", body,
      headers: {"Content-Type": "application/json"}});
    const reply = await answer.json();
    const record = (reply.predictions || [])[0];
    if (!answer.ok || !record || record.error) {
      throw new Error((record && record.error) || reply.message || answer.statusText);
    }
    status.textContent = record.genre;
    card.dataset.genre = record.genre;
    drawBars(card, record);
    drawStrip(card, record.windows);
    card.dataset.state = "done";
  } catch (err) {
    card.classList.add("error");
    status.textContent = "could not classify: " + err.message;
    card.dataset.state = "error";
  }
}

function classifyAll(files) {
  for (const file of files) classify(file);
}

async function start() {
  const drop = document.getElementById("drop");
  const input = document.getElementById("files");
  input.addEventListener("change", () => { classifyAll(input.files); input.value = ""; });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    classifyAll(e.dataTransfer.files);
  });
  document.getElementById("clear").addEventListener("click", () => {
    document.getElementById("results").replaceChildren();
  });
  try {
    const info = await (await fetch("info")).json();
    genres = info.genres;
    topK = info.top_k || 3;
    const legend = document.getElementById("legend");
    for (const g of genres) {
      const item = element("span", {}, g);
      const swatch = element("i");
      swatch.style.background = colour(g);
      item.prepend(swatch);
      legend.append(item);
    }
  } catch (err) { /* the page still works, with default colours */ }
  document.body.dataset.ready = "true";
}

start();
