// Charts drawn as SVG by hand: reveals per identity over time, alerts over time, index sizes.
import { call, q } from "./api.js";
import { el, replace, message } from "./dom.js";
import { t } from "./i18n.js";

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 220;
const PAD = { left: 48, right: 12, top: 12, bottom: 28 };
const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#57606a"];

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// The axis top: a multiple of 4, so the five integer ticks are distinct.
function niceMax(value) {
  return Math.max(4, Math.ceil(value / 4) * 4);
}

function frame(label) {
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label });
}

function axes(root, maxY, ticksX) {
  const innerH = H - PAD.top - PAD.bottom;
  for (let i = 0; i <= 4; i += 1) {
    const y = PAD.top + innerH - (innerH * i) / 4;
    root.appendChild(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "gridline" }));
    root.appendChild(svg("text", { x: PAD.left - 6, y: y + 4, "text-anchor": "end", class: "tick" }, Math.round((maxY * i) / 4)));
  }
  for (const [x, label] of ticksX) root.appendChild(svg("text", { x, y: H - 8, "text-anchor": "middle", class: "tick" }, label));
}

// `count` buckets of at least a minute, from the first event (or an hour ago) to now.
function buckets(times, count) {
  const end = Math.max(Date.now(), ...times);
  const start = Math.min(end - 3600000, ...times);
  const width = Math.max(60000, Math.ceil((end - start + 1) / count));
  return { start, width, count: Math.max(2, Math.ceil((end - start + 1) / width)) };
}

function timeLabel(ms, width) {
  const d = new Date(ms);
  return width >= 86400000 ? d.toLocaleDateString() : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function lineChart(series, start, width, count, label) {
  const root = frame(label);
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const maxY = niceMax(Math.max(...series.flatMap((s) => s.values)));
  const x = (i) => PAD.left + (count === 1 ? innerW / 2 : (innerW * i) / (count - 1));
  const y = (v) => PAD.top + innerH - (innerH * v) / maxY;
  const step = Math.max(1, Math.ceil(count / 6));
  const ticks = [];
  for (let i = 0; i < count; i += step) ticks.push([x(i), timeLabel(start + i * width, width)]);
  axes(root, maxY, ticks);
  series.forEach((s, n) => {
    const color = COLORS[n % COLORS.length];
    root.appendChild(svg("polyline", { points: s.values.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none",
      stroke: color, "stroke-width": 2, class: "series" }));
    s.values.forEach((v, i) => { if (v) root.appendChild(svg("circle", { cx: x(i), cy: y(v), r: 3, fill: color }, undefined)); });
  });
  return root;
}

export function barChart(bars, label, labelOf = (b) => b.label) {
  const root = frame(label);
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const maxY = niceMax(Math.max(...bars.map((b) => b.value)));
  const slot = innerW / Math.max(1, bars.length);
  const step = Math.max(1, Math.ceil(bars.length / 8));
  axes(root, maxY, bars.map((b, i) => [PAD.left + slot * i + slot / 2, i % step === 0 ? labelOf(b) : ""]));
  bars.forEach((b, i) => {
    if (!b.value) return;
    const h = (innerH * b.value) / maxY;
    const rect = svg("rect", { x: PAD.left + slot * i + slot * 0.15, y: PAD.top + innerH - h, width: slot * 0.7, height: h,
      class: "bar" });
    rect.appendChild(svg("title", {}, `${labelOf(b)}: ${b.value}`));
    root.appendChild(rect);
  });
  return root;
}

function legend(series) {
  return el("ul", { class: "legend" }, series.map((s, n) => el("li", {},
    el("span", { class: `swatch swatch-${n % COLORS.length}` }), `${s.name} (${s.values.reduce((a, b) => a + b, 0)})`)));
}

function card(id, title, ...body) {
  return el("section", { class: "card", id }, el("h2", { text: title }), ...body);
}

async function revealsChart() {
  const found = await call("GET", `/_strongroom/audit${q({ size: 1000 })}`);
  const records = (found.records || []).filter((r) => Array.isArray(r.revealed) && r.revealed.length && r.time);
  if (!records.length) return message(t("charts.no_data"), "hint");
  const times = records.map((r) => Date.parse(r.time));
  const { start, width, count } = buckets(times, 24);
  const byIdentity = new Map();
  records.forEach((r, i) => {
    const key = r.identity || "?";
    if (!byIdentity.has(key)) byIdentity.set(key, new Array(count).fill(0));
    byIdentity.get(key)[Math.min(count - 1, Math.floor((times[i] - start) / width))] += r.revealed.length;
  });
  const series = [...byIdentity.entries()].map(([name, values]) => ({ name, values }))
    .sort((a, b) => b.values.reduce((x, y) => x + y, 0) - a.values.reduce((x, y) => x + y, 0)).slice(0, COLORS.length);
  return el("div", {}, lineChart(series, start, width, count, t("charts.reveals")), legend(series));
}

async function alertsChart() {
  const found = await call("GET", `/_strongroom/alerts${q({ size: 1000 })}`);
  const alerts = (found.alerts || []).filter((a) => a.time_ms);
  if (!alerts.length) return message(t("charts.no_data"), "hint");
  const times = alerts.map((a) => a.time_ms);
  const { start, width, count } = buckets(times, 24);
  const bars = Array.from({ length: count }, (_, i) => ({ start: start + i * width, value: 0 }));
  for (const ms of times) bars[Math.min(count - 1, Math.floor((ms - start) / width))].value += 1;
  return barChart(bars, t("charts.alerts"), (b) => timeLabel(b.start, width));
}

async function indicesChart() {
  const rows = await call("GET", "/_cat/indices?format=json&bytes=b");
  if (!Array.isArray(rows) || !rows.length) return message(t("charts.no_data"), "hint");
  const bars = rows.map((r) => ({ label: r.index, value: Number(r["docs.count"]) || 0 }))
    .sort((a, b) => b.value - a.value).slice(0, 20);
  return barChart(bars, t("charts.indices"));
}

export async function chartsPage(main) {
  replace(main, el("h1", { text: t("nav.charts") }));
  for (const [id, title, draw] of [["chart-reveals", t("charts.reveals"), revealsChart],
    ["chart-alerts", t("charts.alerts"), alertsChart], ["chart-indices", t("charts.indices"), indicesChart]]) {
    const body = el("div", {}, message(t("common.loading"), "hint"));
    main.appendChild(card(id, title, body));
    draw().then((node) => replace(body, node)).catch((error) => replace(body, message(error.message)));
  }
}
