// Visits per day as an inline SVG bar chart, with a text equivalent for screen readers.
const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

export function visitsChart(perDay) {
  const width = 320, height = 110, top = 8, bottom = 20;
  const max = Math.max(1, ...perDay.map((d) => d.visits));
  const total = perDay.reduce((n, d) => n + d.visits, 0);
  const busiest = perDay.reduce((a, d) => (d.visits > a.visits ? d : a), perDay[0] || { visits: 0 });
  const summary = `Visits per day over the last ${perDay.length} days: ${total} in all` +
    (busiest && busiest.visits ? `, most on ${busiest.day} (${busiest.visits}).` : ".");
  const svg = el("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img" });
  svg.append(el("title", {}, summary));
  const step = width / Math.max(1, perDay.length);
  perDay.forEach((d, i) => {
    const h = ((height - top - bottom) * d.visits) / max;
    const bar = el("rect", {
      x: (i * step + 1).toFixed(1), y: (height - bottom - h).toFixed(1),
      width: Math.max(1, step - 2).toFixed(1), height: h.toFixed(1),
    });
    bar.append(el("title", {}, `${d.day}: ${d.visits}`));
    svg.append(bar);
    if (i % 7 === 0 || i === perDay.length - 1) {
      const last = i === perDay.length - 1;
      svg.append(el("text", { x: ((i + (last ? 1 : 0)) * step).toFixed(1), y: height - 6,
        "text-anchor": last ? "end" : "start" }, d.day.slice(5)));
    }
  });
  svg.append(el("text", { x: 0, y: top }, `max ${max}`));
  return svg;
}
