"use strict";
(function () {
  var D = JSON.parse(document.getElementById("preview-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var NODE_W = D.nodeW || 250, NODE_H = 24, PAD = 20, MAX_GRAPH_TASKS = 1500, MAX_ROWS = 500;
  var T_ID = 0, T_RUNNER = 1, T_REASON = 2, T_SIZE = 3, T_CMD = 4, T_SEL = 5, T_MODELS = 6, T_UP = 7, T_INLETS = 8;

  function h(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function s(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function clip(text, n) { return text.length > n ? text.slice(0, n - 1) + "\u2026" : text; }
  function runnerClass(runner) {
    if (runner === "celery") return "celery";
    if (runner === "kubernetes") return D.mode === "executor" ? "executor" : "pod";
    return "other";
  }
  function runnerLabel(runner) {
    var c = runnerClass(runner);
    return c === "pod" ? "kubernetes pod" : c === "executor" ? "kubernetes executor" : runner;
  }
  function shellQuote(word) {
    if (/^[A-Za-z0-9_@%+=:,.\/-]+$/.test(word)) return word;
    return "'" + word.replace(/'/g, "'\"'\"'") + "'";
  }
  function command(t) {
    return D.exe.concat([t[T_CMD], "--select", t[T_SEL]], D.flags).map(shellQuote).join(" ");
  }

  // ------------------------------------------------------------------ the DAG of DAGs
  var overview = document.getElementById("overview");
  var dagNodes = [], edgePaths = [];
  function drawOverview() {
    var maxX = 0, maxY = 0;
    D.dags.forEach(function (d) { maxX = Math.max(maxX, d.x); maxY = Math.max(maxY, d.y); });
    overview.setAttribute("width", maxX + NODE_W + 2 * PAD);
    overview.setAttribute("height", maxY + NODE_H + 2 * PAD);
    var edges = s("g"), nodes = s("g");
    var labelled = D.edges.length <= 200;
    if (D.edges.length > 300) overview.classList.add("dense");
    D.edges.forEach(function (e, i) {
      var a = D.dags[e[0]], b = D.dags[e[1]];
      var x1 = a.x + NODE_W + PAD, y1 = a.y + NODE_H / 2 + PAD, x2 = b.x + PAD, y2 = b.y + NODE_H / 2 + PAD;
      var mid = (x1 + x2) / 2;
      var p = s("path", { "class": "edge", d: "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " + mid + "," + y2 + " " + x2 + "," + y2 });
      p.appendChild(s("title", {}, a.id + " \u2192 " + b.id + ": " + e[2].join(", ")));
      edges.appendChild(p);
      edgePaths.push(p);
      if (labelled) {
        var label = e[2].length > 1 ? e[2][0] + " +" + (e[2].length - 1) : e[2][0];
        edges.appendChild(s("text", { "class": "elabel", x: mid, y: (y1 + y2) / 2 - 3, "text-anchor": "middle" }, clip(label, 18)));
      }
    });
    D.dags.forEach(function (d, i) {
      var g = s("g", { "class": "dag", "data-dag": d.id, transform: "translate(" + (d.x + PAD) + "," + (d.y + PAD) + ")", tabindex: "0" });
      g.appendChild(s("title", {}, d.id + " (" + d.tasks.length + " tasks, owner " + d.owner + ")"));
      g.appendChild(s("rect", { width: NODE_W, height: NODE_H }));
      g.appendChild(s("text", { x: 8, y: 16 }, clip(d.id, Math.floor((NODE_W - 24) / 7) - 4) + " \u00b7 " + d.tasks.length));
      g.addEventListener("click", function () { select(i, null); });
      g.addEventListener("keydown", function (ev) { if (ev.key === "Enter") select(i, null); });
      nodes.appendChild(g);
      dagNodes.push(g);
    });
    overview.appendChild(edges);
    overview.appendChild(nodes);
  }

  // ------------------------------------------------------------------ one DAG, on demand
  function layoutTasks(tasks) {
    var n = tasks.length, layer = new Array(n).fill(0), indeg = new Array(n).fill(0), kids = [];
    for (var i = 0; i < n; i++) kids.push([]);
    tasks.forEach(function (t, i) { t[T_UP].forEach(function (u) { kids[u].push(i); indeg[i]++; }); });
    var queue = [];
    for (i = 0; i < n; i++) if (indeg[i] === 0) queue.push(i);
    for (var q = 0; q < queue.length; q++) {
      var u = queue[q];
      kids[u].forEach(function (k) { layer[k] = Math.max(layer[k], layer[u] + 1); if (--indeg[k] === 0) queue.push(k); });
    }
    var cols = [], rowOf = new Array(n);
    for (i = 0; i < n; i++) { (cols[layer[i]] = cols[layer[i]] || []).push(i); }
    cols.forEach(function (col, c) {
      if (c > 0) {
        var key = {};
        col.forEach(function (t) {
          var ups = tasks[t][T_UP];
          key[t] = ups.length ? ups.reduce(function (a, u) { return a + rowOf[u]; }, 0) / ups.length : 0;
        });
        col.sort(function (a, b) { return key[a] - key[b] || a - b; });
      }
      col.forEach(function (t, r) { rowOf[t] = r; });
    });
    return { layer: layer, row: rowOf, cols: cols.length, rows: Math.max.apply(null, cols.map(function (c) { return c.length; }).concat([0])) };
  }

  function drawTasks(dag, wrap) {
    var tasks = dag.tasks, TW = 190, TH = 22, CW = 230, RH = 30;
    if (tasks.length > MAX_GRAPH_TASKS) {
      wrap.appendChild(h("p", { "class": "muted", id: "graph-skipped" }, "The graph of " + tasks.length + " tasks is not drawn (over " + MAX_GRAPH_TASKS + "); use the table and the search."));
      return [];
    }
    var L = layoutTasks(tasks);
    var svg = s("svg", { id: "taskgraph", width: L.cols * CW + PAD, height: L.rows * RH + PAD });
    var lines = s("g"), boxes = s("g"), out = [];
    function pos(i) { return [L.layer[i] * CW + PAD / 2, L.row[i] * RH + PAD / 2]; }
    tasks.forEach(function (t, i) {
      var b = pos(i);
      t[T_UP].forEach(function (u) {
        var a = pos(u), x1 = a[0] + TW, y1 = a[1] + TH / 2, x2 = b[0], y2 = b[1] + TH / 2, m = (x1 + x2) / 2;
        lines.appendChild(s("path", { "class": "tedge", d: "M" + x1 + "," + y1 + " C" + m + "," + y1 + " " + m + "," + y2 + " " + x2 + "," + y2 }));
      });
      var g = s("g", { "class": "task", "data-task": t[T_ID], transform: "translate(" + b[0] + "," + b[1] + ")" });
      g.appendChild(s("title", {}, t[T_ID] + ": " + runnerLabel(t[T_RUNNER]) + " (" + t[T_REASON] + ")"));
      g.appendChild(s("rect", { width: TW, height: TH, "class": runnerClass(t[T_RUNNER]) }));
      g.appendChild(s("text", { x: 6, y: 15 }, clip(t[T_ID], 28)));
      g.addEventListener("click", function () { pickTask(dag, i); });
      boxes.appendChild(g);
      out.push(g);
    });
    svg.appendChild(lines);
    svg.appendChild(boxes);
    wrap.appendChild(svg);
    return out;
  }

  var current = null, taskNodes = [], taskRows = [];
  function dagLink(i) {
    var a = h("a", { "class": "dagref", "data-dag": D.dags[i].id }, D.dags[i].id);
    a.addEventListener("click", function () { select(i, null); });
    return a;
  }
  function fact(dl, name, value) {
    dl.appendChild(h("dt", {}, name));
    var dd = h("dd");
    if (typeof value === "string") dd.textContent = value; else dd.appendChild(value);
    dl.appendChild(dd);
  }

  function select(i, taskIndex) {
    var dag = D.dags[i];
    dagNodes.forEach(function (g, j) { g.classList.toggle("selected", j === i); });
    D.edges.forEach(function (e, j) { edgePaths[j].classList.toggle("on", e[0] === i || e[1] === i); });
    var detail = document.getElementById("detail");
    detail.textContent = "";
    detail.appendChild(h("h2", { id: "dag-title" }, dag.id));
    var dl = h("dl", { "class": "facts" });
    fact(dl, "owner", dag.owner);
    fact(dl, "starts", dag.starts);
    fact(dl, "group", dag.group);
    fact(dl, "tags", dag.tags.join(", ") || "none");
    fact(dl, "file", dag.file);
    var ups = h("span");
    dag.up.forEach(function (u) { ups.appendChild(dagLink(u)); });
    if (!dag.up.length) ups.textContent = "none";
    fact(dl, "upstream DAGs", ups);
    var downs = h("span");
    D.edges.forEach(function (e) { if (e[0] === i) downs.appendChild(dagLink(e[1])); });
    if (!downs.childNodes.length) downs.textContent = "none";
    fact(dl, "downstream DAGs", downs);
    var counts = {};
    dag.tasks.forEach(function (t) { counts[runnerLabel(t[T_RUNNER])] = (counts[runnerLabel(t[T_RUNNER])] || 0) + 1; });
    fact(dl, "tasks", dag.tasks.length + " (" + Object.keys(counts).sort().map(function (k) { return k + " " + counts[k]; }).join(", ") + ")");
    detail.appendChild(dl);
    detail.appendChild(h("div", { id: "task-detail" }));
    var side = document.getElementById("side");
    side.textContent = "";
    side.appendChild(h("h3", {}, "Task graph"));
    var wrap = h("div", { id: "taskgraph-wrap" });
    side.appendChild(wrap);
    taskNodes = drawTasks(dag, wrap);
    side.appendChild(h("h3", {}, "Tasks"));
    var table = h("table", { id: "tasks" }), head = h("tr");
    ["task", "runner", "why", "size", "dbt"].forEach(function (c) { head.appendChild(h("th", {}, c)); });
    table.appendChild(head);
    taskRows = [];
    var shown = taskIndex !== null && taskIndex >= MAX_ROWS ? [taskIndex] : [];
    dag.tasks.slice(0, MAX_ROWS).forEach(function (t, j) { shown.push(j); });
    shown.forEach(function (j) {
      var t = dag.tasks[j], tr = h("tr", { "data-task": t[T_ID] });
      tr.appendChild(h("td", {}, t[T_ID]));
      var chip = h("span", { "class": "chip " + runnerClass(t[T_RUNNER]) }, runnerLabel(t[T_RUNNER]));
      var td = h("td"); td.appendChild(chip); tr.appendChild(td);
      tr.appendChild(h("td", {}, t[T_REASON]));
      tr.appendChild(h("td", {}, t[T_SIZE]));
      var code = h("td"); code.appendChild(h("code", {}, t[T_CMD] + " --select " + t[T_SEL])); tr.appendChild(code);
      tr.addEventListener("click", function () { pickTask(dag, j); });
      table.appendChild(tr);
      taskRows[j] = tr;
    });
    side.appendChild(table);
    if (dag.tasks.length > MAX_ROWS) side.appendChild(h("p", { "class": "muted" }, "and " + (dag.tasks.length - MAX_ROWS) + " more tasks: search for a model to see its row"));
    current = i;
    if (taskIndex !== null) pickTask(dag, taskIndex);
    else dagNodes[i].scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  function pickTask(dag, j) {
    var t = dag.tasks[j];
    taskNodes.forEach(function (g, k) { g.classList.toggle("picked", k === j); });
    taskRows.forEach(function (tr, k) { if (tr) tr.classList.toggle("picked", k === j); });
    var box = document.getElementById("task-detail");
    box.textContent = "";
    box.appendChild(h("h3", { id: "task-title" }, t[T_ID]));
    var dl = h("dl", { "class": "facts" });
    fact(dl, "models", t[T_MODELS].join(", "));
    fact(dl, "runner", runnerLabel(t[T_RUNNER]));
    fact(dl, "why", t[T_REASON]);
    if (t[T_SIZE]) fact(dl, "size", t[T_SIZE]);
    var ups = t[T_UP].map(function (u) { return dag.tasks[u][T_ID]; });
    fact(dl, "after", ups.join(", ") || "none in this DAG");
    fact(dl, "reads from other DAGs", t[T_INLETS] + " asset" + (t[T_INLETS] === 1 ? "" : "s"));
    box.appendChild(dl);
    box.appendChild(h("pre", { id: "task-command" }, command(t)));
    var node = taskNodes[j] || taskRows[j];
    if (node) node.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  // ------------------------------------------------------------------ search
  var search = document.getElementById("search"), results = document.getElementById("results"), timer = null;
  function runSearch() {
    var q = search.value.trim().toLowerCase();
    results.textContent = "";
    dagNodes.forEach(function (g) { g.classList.remove("hit"); });
    if (q.length < 2) return;
    var found = 0, total = 0;
    D.dags.forEach(function (d, i) {
      var hit = false;
      d.tasks.forEach(function (t, j) {
        var match = t[T_ID].toLowerCase().indexOf(q) >= 0 || t[T_MODELS].some(function (m) { return m.toLowerCase().indexOf(q) >= 0; });
        if (!match) return;
        hit = true; total++;
        if (found >= 50) return;
        found++;
        var li = h("li", { "data-dag": d.id, "data-task": t[T_ID] });
        li.appendChild(h("span", {}, t[T_ID]));
        li.appendChild(h("span", { "class": "where" }, d.id + " \u00b7 " + runnerLabel(t[T_RUNNER])));
        li.addEventListener("click", function () { results.textContent = ""; select(i, j); });
        results.appendChild(li);
      });
      if (hit) dagNodes[i].classList.add("hit");
    });
    if (!total) results.appendChild(h("li", { "class": "muted" }, "no model matches"));
    else if (total > found) results.appendChild(h("li", { "class": "muted" }, "and " + (total - found) + " more"));
  }
  search.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(runSearch, 120); });
  search.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { search.value = ""; runSearch(); } });

  // ------------------------------------------------------------------ changes
  if (D.changes) {
    var box = document.getElementById("changes");
    box.appendChild(h("h2", {}, "What changes"));
    box.appendChild(h("pre", { id: "changes-text" }, D.changes.join("\n")));
  }
  drawOverview();
  document.body.setAttribute("data-ready", "1");
})();
