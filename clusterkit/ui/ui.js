// The cluster page: renders GET /cluster and follows it with the
// long-poll (If-None-Match + ?wait=), so it redraws on every map change
// without polling. Plain JavaScript, no build step.
"use strict";

const state = { etag: "", info: null, selected: "" };

// colour gives each node a distinct hue, stable while the node set is.
function colour(i, n) {
  const hue = Math.round((i * 360) / Math.max(n, 1) + 200) % 360;
  const light = n > 24 ? 38 + (i % 3) * 9 : 45;
  return `hsl(${hue} 62% ${light}%)`;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function render(info) {
  const nodes = info.nodes || [];
  const parts = info.partitions || [];
  const colours = {};
  nodes.forEach((n, i) => { colours[n.id] = colour(i, nodes.length); });
  const counts = {};
  for (const n of nodes) counts[n.id] = { p: 0, r: 0, j: 0 };
  let moves = 0;
  for (const p of parts) {
    if (counts[p.primary_node]) counts[p.primary_node].p++;
    for (const r of p.replica_nodes || []) if (counts[r]) counts[r].r++;
    for (const j of p.joining_nodes || []) { if (counts[j]) counts[j].j++; moves++; }
  }

  document.getElementById("cluster-name").textContent = info.cluster_name;
  document.getElementById("leader").textContent = info.leader_id || "none";
  document.getElementById("version").textContent = info.version;
  document.getElementById("node-count").textContent = nodes.length;
  document.getElementById("partition-count").textContent = info.partition_count;
  document.getElementById("rf").textContent = info.replication_factor;
  document.getElementById("moves-count").textContent = moves;
  document.body.dataset.version = info.version;

  const tbody = document.querySelector("#nodes tbody");
  tbody.replaceChildren(...nodes.map((n) => {
    const c = counts[n.id];
    const tags = el("td");
    if (n.id === info.leader_id) tags.append(el("span", { class: "tag leader" }, "leader"));
    if (n.draining) tags.append(el("span", { class: "tag draining" }, "draining"));
    const tr = el("tr", { id: "node-" + n.id, "data-state": n.state, "data-draining": String(!!n.draining) },
      el("td", {}, el("span", { class: "swatch", style: "" })),
      el("td", {}, n.id), el("td", { class: "state" }, n.state), el("td", {}, n.zone || "-"),
      el("td", { class: "num" }, String(n.weight)), el("td", { class: "num primaries" }, String(c.p)),
      el("td", { class: "num replicas" }, String(c.r)), el("td", { class: "num joining" }, String(c.j)), tags);
    tr.querySelector(".swatch").style.background = colours[n.id];
    if (n.id === state.selected) tr.classList.add("selected");
    tr.addEventListener("click", () => { state.selected = state.selected === n.id ? "" : n.id; render(state.info); });
    return tr;
  }));

  const grid = document.getElementById("grid");
  grid.classList.toggle("dense", parts.length > 256);
  grid.replaceChildren(...parts.map((p) => {
    const joining = p.joining_nodes || [];
    const replicas = p.replica_nodes || [];
    const cell = el("div", {
      id: "p-" + p.index, class: "p",
      "data-primary": p.primary_node, "data-replicas": replicas.join(","), "data-joining": joining.join(","),
      title: `partition ${p.index} (epoch ${p.epoch})\nprimary ${p.primary_node || "none"}\nreplicas ${replicas.join(", ") || "none"}` +
        (joining.length ? `\njoining ${joining.join(", ")}` : ""),
    }, el("span", { class: "n" }, String(p.index)));
    if (p.primary_node) cell.style.background = colours[p.primary_node] || "#888";
    else cell.classList.add("none");
    if (joining.length) cell.classList.add("joining");
    const dots = el("span", { class: "r" });
    for (const r of replicas) { const d = el("i"); d.style.background = colours[r] || "#888"; dots.append(d); }
    cell.append(dots);
    if (state.selected) {
      const owns = p.primary_node === state.selected || replicas.includes(state.selected) || joining.includes(state.selected);
      cell.classList.add(owns ? "mark" : "dim");
    }
    return cell;
  }));

  const list = document.getElementById("moves");
  const items = [];
  for (const p of parts) {
    for (const j of p.joining_nodes || []) {
      items.push(el("li", { "data-partition": String(p.index) }, `partition ${p.index}: ${j} joining (primary ${p.primary_node || "none"})`));
    }
  }
  list.replaceChildren(...items);
}

function setLive(ok, text) {
  const live = document.getElementById("live");
  live.className = "live " + (ok ? "ok" : "down");
  live.textContent = text;
}

// follow fetches the map, then waits for each change with the long-poll.
async function follow() {
  let pause = 500;
  for (;;) {
    try {
      const url = state.info ? "/cluster?wait=30s" : "/cluster";
      const resp = await fetch(url, { headers: state.etag ? { "If-None-Match": state.etag } : {}, cache: "no-store" });
      if (resp.status === 200) {
        state.etag = resp.headers.get("ETag") || "";
        state.info = await resp.json();
        render(state.info);
      } else if (resp.status !== 304) {
        throw new Error("HTTP " + resp.status);
      }
      setLive(true, "live");
      pause = 500;
    } catch (err) {
      setLive(false, "reconnecting: " + err.message);
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 5000);
    }
  }
}

follow();
