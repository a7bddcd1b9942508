// evalkit report page: renders the embedded JSON (no network, no libraries).
// URL hash parameters select the view: #task=docvqa&model=m&filter=incorrect&q=text&sort=docvqa:asc&page=2,
// #task=docvqa&model=m&sample=ID (one sample), #compare=docvqa&a=m1&b=m2&cfilter=a (two models).
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = 50;
  var digits = DATA.decimals;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "cls") node.className = attrs[k];
        else node.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }
  function fmt(v) { return v === null || v === undefined ? "\u2013" : Number(v).toFixed(digits); }
  function valueCell(c) {
    var td = el("td", { cls: "num" });
    if (!c || c.v === null || c.v === undefined) { td.textContent = "\u2013"; td.dataset.sort = ""; }
    else {
      td.dataset.sort = String(c.v);
      td.appendChild(el("span", { cls: c.best ? "best" : "", text: fmt(c.v) }));
      if (c.pm !== null && c.pm !== undefined) td.appendChild(el("span", { cls: "pm", text: " \u00b1 " + fmt(c.pm) }));
      if (c.lo !== null && c.lo !== undefined) td.title = "CI [" + fmt(c.lo) + ", " + fmt(c.hi) + "]" + (c.n ? ", n = " + c.n : "") + (c.nc ? ", " + c.nc + " clusters" : "");
    }
    if (c && c.markers) td.appendChild(el("span", { cls: "marker", text: c.markers }));
    return td;
  }

  // ---- sortable tables ------------------------------------------------------------------
  function makeSortable(table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.classList.add("sortable");
      th.addEventListener("click", function () {
        var desc = !th.classList.contains("sorted-desc");
        heads.forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(desc ? "sorted-desc" : "sorted-asc");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
          if (x === undefined) x = a.cells[col].textContent;
          if (y === undefined) y = b.cells[col].textContent;
          var nx = x === "" ? NaN : Number(x), ny = y === "" ? NaN : Number(y);
          if (!isNaN(nx) || !isNaN(ny)) {
            if (isNaN(nx)) return 1;  // missing values last
            if (isNaN(ny)) return -1;
            return desc ? ny - nx : nx - ny;
          }
          return desc ? String(y).localeCompare(String(x)) : String(x).localeCompare(String(y));
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }

  // ---- leaderboard ----------------------------------------------------------------------
  function renderLeaderboard() {
    var lb = DATA.leaderboard;
    var table = document.getElementById("leaderboard");
    var head = el("tr", null, [el("th", { text: "Model" })]);
    lb.columns.forEach(function (c) {
      var th = el("th", { title: c.metric + (c.scale !== 1 ? " \u00d7" + c.scale : "") }, [c.task]);
      if (c.markers) th.appendChild(el("span", { cls: "marker", text: c.markers }));
      th.appendChild(el("div", { cls: "pm", text: c.metric }));
      head.appendChild(th);
    });
    table.appendChild(el("thead", null, [head]));
    var body = el("tbody");
    lb.rows.forEach(function (r) {
      var tr = el("tr", { "data-model": r.model }, [el("td", { text: r.model })]);
      lb.columns.forEach(function (c) { tr.appendChild(valueCell(r.cells[c.task])); });
      body.appendChild(tr);
    });
    table.appendChild(body);
    makeSortable(table);
    var notes = document.getElementById("leaderboard-notes");
    DATA.notes.forEach(function (n) { notes.appendChild(el("p", { text: n })); });
    DATA.footnotes.forEach(function (f) {
      notes.appendChild(el("p", null, [el("span", { cls: "marker", text: f.marker }), " " + f.text]));
    });
  }

  function renderPaper() {
    if (!DATA.paper) return;
    document.getElementById("paper-section").hidden = false;
    document.getElementById("paper-title").textContent = "Published numbers: " + DATA.paper.name;
    var table = document.getElementById("paper");
    var cols = ["Model", "Paper model", "Task", "Benchmark", "Split", "Metric", "Ours", "Paper", "\u0394", "In CI", "Source", "Note"];
    table.appendChild(el("thead", null, [el("tr", null, cols.map(function (c) { return el("th", { text: c }); }))]));
    var body = el("tbody");
    DATA.paper.rows.forEach(function (r) {
      var inside = r.inside === null ? el("td", { text: "\u2013" }) :
        el("td", { cls: r.inside ? "yes" : "no", text: r.inside ? "yes" : "no" });
      body.appendChild(el("tr", null, [
        el("td", { text: r.model }), el("td", { text: r.paper_model }), el("td", { text: r.task }),
        el("td", { text: r.benchmark }), el("td", { text: r.split }), el("td", { text: r.metric }),
        valueCell({ v: r.ours, pm: r.pm, lo: r.lo, hi: r.hi }),
        el("td", { cls: "num", "data-sort": String(r.paper), text: r.paper_text }),
        valueCell({ v: r.delta }), inside, el("td", { text: r.source }), el("td", { text: r.note })
      ]));
    });
    table.appendChild(body);
    makeSortable(table);
  }

  function renderBreakdowns() {
    var tasks = Object.keys(DATA.breakdowns);
    if (!tasks.length) return;
    document.getElementById("breakdown-section").hidden = false;
    var root = document.getElementById("breakdowns");
    tasks.forEach(function (task) {
      Object.keys(DATA.breakdowns[task]).forEach(function (key) {
        var b = DATA.breakdowns[task][key];
        root.appendChild(el("h3", { text: task + " by " + key + " (" + b.metric + ")" }));
        var table = el("table", { cls: "data breakdown", "data-task": task, "data-key": key });
        table.appendChild(el("thead", null, [el("tr", null, [el("th", { text: key })].concat(
          b.models.map(function (m) { return el("th", { text: m }); })))]));
        var body = el("tbody");
        b.groups.forEach(function (g) {
          var tr = el("tr", null, [el("td", { text: g })]);
          b.models.forEach(function (m) { tr.appendChild(valueCell((b.cells[m] || {})[g])); });
          body.appendChild(tr);
        });
        table.appendChild(body);
        root.appendChild(el("div", { cls: "scroll" }, [table]));
        makeSortable(table);
      });
    });
  }

  function renderRuns() {
    var table = document.getElementById("runs");
    var cols = ["Model", "Tasks", "Directory", "evalkit", "Git commit", "End time"];
    table.appendChild(el("thead", null, [el("tr", null, cols.map(function (c) { return el("th", { text: c }); }))]));
    var body = el("tbody");
    DATA.runs.forEach(function (r) {
      body.appendChild(el("tr", null, [r.model, r.tasks, r.path, r.evalkit_version, r.git_commit, r.end_time].map(
        function (v) { return el("td", { text: v === null || v === undefined ? "" : String(v) }); })));
    });
    table.appendChild(body);
    var ul = document.getElementById("warnings");
    DATA.warnings.forEach(function (w) { ul.appendChild(el("li", { text: w })); });
  }

  // ---- sample store: embedded records + page files loaded on demand ------------------------
  var PAGE = DATA.page_size;
  var STATUS = { c: "correct", i: "incorrect", e: "error", u: "unscored", s: "scored" };
  var store = {}, pending = {}, failed = {};
  // Page files (DATA.page_dir/<block key>/<page>.js) call this with their records.
  window.evalkitSamplePage = function (key, page, items) {
    var st = store[key] || (store[key] = {});
    items.forEach(function (it, j) { st[page * PAGE + j] = it; });
    var cbs = pending[key + "/" + page] || [];
    delete pending[key + "/" + page];
    cbs.forEach(function (cb) { cb(); });
  };
  function records(block) {
    if (!store[block.key]) store[block.key] = {};
    var st = store[block.key];
    if (!st.__init) { block.items.forEach(function (it, i) { if (!st[i]) st[i] = it; }); st.__init = true; }
    return st;
  }
  // Call done() once the records at `indices` of every block in `blocks` are loaded (or failed).
  function ensure(needs, done) {
    var files = [];
    needs.forEach(function (n) {
      var st = records(n.block), seen = {};
      n.indices.forEach(function (i) {
        var page = Math.floor(i / PAGE);
        if (!st[i] && !seen[page] && !failed[n.block.key + "/" + page]) { seen[page] = true; files.push([n.block.key, page]); }
      });
    });
    var left = files.length;
    if (!left) { done(); return; }
    function one() { if (--left === 0) done(); }
    files.forEach(function (f) {
      var id = f[0] + "/" + f[1], first = !pending[id];
      (pending[id] = pending[id] || []).push(one);
      if (!first) return;
      var script = document.createElement("script");
      script.src = DATA.page_dir + "/" + f[0] + "/" + f[1] + ".js";
      script.onerror = function () {
        failed[id] = true;
        var cbs = pending[id] || [];
        delete pending[id];
        cbs.forEach(function (cb) { cb(); });
      };
      document.head.appendChild(script);
    });
  }
  function missingNote() {
    return "(not loaded: keep the folder " + DATA.page_dir + "/ beside this page)";
  }

  // ---- sample browser -------------------------------------------------------------------
  var taskSel = document.getElementById("sample-task");
  var modelSel = document.getElementById("sample-model");
  var filterSel = document.getElementById("sample-filter");
  var search = document.getElementById("sample-search");
  var pageInput = document.getElementById("page-input");
  var page = 0, token = 0;
  var view = { index: null };

  function show(v) {
    if (v === null || v === undefined) return "";
    if (Array.isArray(v)) return v.map(show).join(" | ");
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function thumbSrc(s) {
    if (!s || !s.thumb) return null;
    return s.inline_thumb ? s.thumb : DATA.images[s.thumb] || null;
  }
  function scoreText(v) { return v === null || v === undefined ? "\u2013" : Number(v).toFixed(3); }
  function currentBlock() { return (DATA.samples[taskSel.value] || {})[modelSel.value] || null; }
  function fillModels(select, task, keep) {
    var models = Object.keys(DATA.samples[task] || {});
    select.innerHTML = "";
    models.forEach(function (m) { select.appendChild(el("option", { value: m, text: m })); });
    if (models.indexOf(keep) >= 0) select.value = keep;
    return models;
  }
  // Indices (into the block's samples) that pass the status filter and, among loaded records,
  // the search; `searched` says how many records the search could look at.
  function selection(block) {
    var f = filterSel.value, q = search.value.trim().toLowerCase(), out = [], st = records(block), searched = 0;
    for (var i = 0; i < block.total; i++) {
      if (f !== "all" && STATUS[block.status[i]] !== f) continue;
      if (q) {
        var s = st[i];
        if (!s) continue;
        searched++;
        if ([s.id, s.question, s.prompt, s.prediction, show(s.target)].join("\n").toLowerCase().indexOf(q) < 0) continue;
      }
      out.push(i);
    }
    return { indices: out, searched: searched, query: q };
  }
  function questionCell(s) {
    var q = s.question || s.prompt || "";
    var cell = el("td", { cls: "question" }, [el("div", { cls: "q", text: q.length > 300 ? q.slice(0, 300) + "\u2026" : q })]);
    if (s.prompt) cell.appendChild(el("details", null, [el("summary", { text: "full prompt" }), el("pre", { text: s.prompt })]));
    return cell;
  }
  function statusCell(s) {
    var cell = el("td", null, [el("span", { cls: "status status-" + s.status, text: s.status })]);
    if (s.error) cell.appendChild(el("div", { cls: "pm", text: s.error }));
    return cell;
  }
  function openLink(id, handler) {
    var a = el("a", { href: "#", cls: "open", text: id });
    a.addEventListener("click", function (e) { e.preventDefault(); handler(); });
    return a;
  }
  function renderSamples() {
    var my = ++token;
    var block = currentBlock();
    var table = document.getElementById("samples");
    var hint = document.getElementById("sample-hint");
    if (!block) {
      table.innerHTML = "";
      document.getElementById("sample-count").textContent = "no samples";
      hint.textContent = "";
      document.body.dataset.samplesRendered = "0";
      return;
    }
    var sel = selection(block), pages = Math.max(1, Math.ceil(sel.indices.length / PAGE));
    if (page >= pages) page = pages - 1;
    if (page < 0) page = 0;
    var shown = sel.indices.slice(page * PAGE, (page + 1) * PAGE);
    document.getElementById("sample-count").textContent = sel.indices.length + " of " + block.total + " samples match";
    hint.textContent = (block.correct ? block.correct.text : "no correct/incorrect: " + block.score +
      " is not a 0/1 score, so the task defines no right or wrong; rows show the score") +
      (block.embedded < block.total ? "; " + block.embedded + " samples are in this page, the others load from " + DATA.page_dir + "/ as you page" : "") +
      (sel.query ? "; the search covers the " + sel.searched + " loaded samples" : "");
    document.getElementById("page-info").textContent = "page " + (page + 1) + " of " + pages;
    pageInput.max = String(pages);
    pageInput.value = String(page + 1);
    document.getElementById("page-prev").disabled = page === 0;
    document.getElementById("page-next").disabled = page >= pages - 1;
    ensure([{ block: block, indices: shown }], function () {
      if (my !== token) return;
      var st = records(block);
      table.innerHTML = "";
      table.appendChild(el("thead", null, [el("tr", null, ["Image", "Id", "Question", "Prediction", "Target", "Score", "Status"].map(
        function (c) { return el("th", { text: c }); }))]));
      var body = el("tbody");
      shown.forEach(function (i) {
        var s = st[i];
        if (!s) {
          body.appendChild(el("tr", { cls: "sample missing", "data-id": block.ids[i], "data-status": STATUS[block.status[i]] }, [
            el("td"), el("td", { text: block.ids[i] }), el("td", { text: missingNote() }), el("td"), el("td"),
            el("td", { cls: "num", text: scoreText(block.scores[i]) }), el("td", { text: STATUS[block.status[i]] })]));
          return;
        }
        var src = thumbSrc(s);
        body.appendChild(el("tr", { cls: "sample", "data-status": s.status, "data-id": s.id }, [
          el("td", null, [src ? el("img", { src: src, alt: "sample " + s.id }) : null]),
          el("td", null, [openLink(s.id, function () { openSample(i); })]),
          questionCell(s),
          el("td", { text: show(s.prediction) }), el("td", { text: show(s.target) }),
          el("td", { cls: "num", text: scoreText(s.score) }),
          statusCell(s)
        ]));
      });
      table.appendChild(body);
      document.body.dataset.samplesRendered = String(shown.length);
      document.body.dataset.samplesPage = String(page + 1);
    });
  }

  // ---- one sample -----------------------------------------------------------------------
  function openSample(index) {
    view.index = index;
    renderView();
  }
  function closeView() {
    view.index = null;
    document.getElementById("sample-view-section").hidden = true;
  }
  function renderView() {
    var block = currentBlock(), section = document.getElementById("sample-view-section");
    if (!block || view.index === null) { section.hidden = true; return; }
    var i = view.index, order = selection(block).indices, pos = order.indexOf(i);
    if (pos < 0) order = null;  // opened by id outside the current filter: step through all samples
    var prev = order ? order[pos - 1] : i - 1, next = order ? order[pos + 1] : i + 1;
    document.getElementById("view-prev").disabled = prev === undefined || prev < 0;
    document.getElementById("view-next").disabled = next === undefined || next >= block.total;
    document.getElementById("view-prev").onclick = function () { openSample(prev); };
    document.getElementById("view-next").onclick = function () { openSample(next); };
    document.getElementById("view-pos").textContent = "sample " + (i + 1) + " of " + block.total +
      (order ? " (" + (pos + 1) + " of " + order.length + " shown by the filter)" : "");
    ensure([{ block: block, indices: [i] }], function () {
      var s = records(block)[i], table = document.getElementById("sample-view");
      section.hidden = false;
      section.dataset.sampleId = block.ids[i];
      document.getElementById("sample-view-title").textContent = "Sample " + block.ids[i] + " \u00b7 " + taskSel.value + " \u00b7 " + modelSel.value;
      table.innerHTML = "";
      function row(name, value, id) {
        var td = typeof value === "string" ? el("td", { text: value }) : el("td", null, [value]);
        if (id) td.id = id;
        table.appendChild(el("tr", null, [el("th", { text: name }), td]));
      }
      if (!s) { row("Record", missingNote(), "view-missing"); return; }
      var src = thumbSrc(s);
      if (src) row("Image", el("img", { src: src, alt: "sample " + s.id }));
      row("Id", s.id, "view-id");
      row("Question", s.question || "", "view-question");
      row("Prediction", show(s.prediction), "view-prediction");
      row("Target", show(s.target), "view-target");
      row("Score (" + block.score + ")", scoreText(s.score), "view-score");
      row("All scores", show(s.scores));
      row("Status", s.status + (block.correct ? " (" + block.correct.text + ")" : ""), "view-status");
      if (s.error) row("Error", s.error, "view-error");
      row("Metadata", show(s.metadata));
      row("Prompt", el("pre", { text: s.prompt || "" }), "view-prompt");
      section.scrollIntoView && section.scrollIntoView();
    });
  }
  function openById(id) {
    var block = currentBlock(), msg = document.getElementById("open-msg");
    var i = block ? block.ids.indexOf(id) : -1;
    msg.textContent = i < 0 ? "no sample " + JSON.stringify(id) + " in " + taskSel.value + " / " + modelSel.value : "";
    if (i >= 0) openSample(i);
  }

  function initSamples() {
    Object.keys(DATA.samples).forEach(function (t) { taskSel.appendChild(el("option", { value: t, text: t })); });
    fillModels(modelSel, taskSel.value, modelSel.value);
    function reset() { page = 0; closeView(); renderSamples(); }
    taskSel.addEventListener("change", function () { fillModels(modelSel, taskSel.value, modelSel.value); reset(); });
    modelSel.addEventListener("change", reset);
    filterSel.addEventListener("change", reset);
    search.addEventListener("input", reset);
    document.getElementById("page-prev").addEventListener("click", function () { page--; renderSamples(); });
    document.getElementById("page-next").addEventListener("click", function () { page++; renderSamples(); });
    pageInput.addEventListener("change", function () { page = (parseInt(pageInput.value, 10) || 1) - 1; renderSamples(); });
    document.getElementById("open-go").addEventListener("click", function () { openById(document.getElementById("open-id").value.trim()); });
    document.getElementById("open-id").addEventListener("keydown", function (e) { if (e.key === "Enter") openById(this.value.trim()); });
    document.getElementById("view-close").addEventListener("click", closeView);
    renderSamples();
  }

  // ---- compare two models on the same samples -------------------------------------------
  var cmpTask = document.getElementById("cmp-task"), cmpA = document.getElementById("cmp-a");
  var cmpB = document.getElementById("cmp-b"), cmpFilter = document.getElementById("cmp-filter");
  var cmpPage = 0, cmpToken = 0;
  function better(sa, sb, ea, eb) {
    // +1: A better, -1: B better, 0: same. An errored sample loses to a scored one.
    if (ea || eb) return ea === eb ? 0 : (ea ? -1 : 1);
    if (sa === sb) return 0;
    if (sa === null) return -1;
    if (sb === null) return 1;
    return sa > sb ? 1 : -1;
  }
  function disagreements(a, b) {
    var where = {}, out = [], nBoth = 0, aBetter = 0, bBetter = 0, differ = 0;
    b.ids.forEach(function (id, j) { where[id] = j; });
    for (var i = 0; i < a.total; i++) {
      var j = where[a.ids[i]];
      if (j === undefined) continue;
      nBoth++;
      var sa = a.scores[i], sb = b.scores[j], ea = a.status[i] === "e", eb = b.status[j] === "e";
      var w = better(sa, sb, ea, eb);
      if (w === 0 && a.status[i] === b.status[j]) continue;
      differ++;
      if (w > 0) aBetter++;
      if (w < 0) bBetter++;
      out.push({ i: i, j: j, w: w });
    }
    return { rows: out, nBoth: nBoth, aBetter: aBetter, bBetter: bBetter, differ: differ };
  }
  function renderCompare() {
    var my = ++cmpToken, task = cmpTask.value, blocks = DATA.samples[task] || {};
    var a = blocks[cmpA.value], b = blocks[cmpB.value], table = document.getElementById("compare");
    var summary = document.getElementById("cmp-summary");
    table.innerHTML = "";
    if (!a || !b || cmpA.value === cmpB.value) {
      summary.textContent = "choose two different models";
      document.body.dataset.compareRendered = "0";
      return;
    }
    var d = disagreements(a, b), f = cmpFilter.value;
    var rows = d.rows.filter(function (r) { return f === "all" || (f === "a" ? r.w > 0 : r.w < 0); });
    summary.textContent = d.nBoth + " samples in both; they disagree on " + d.differ + ": " + cmpA.value +
      " (A) better on " + d.aBetter + ", " + cmpB.value + " (B) better on " + d.bBetter +
      " (score " + a.score + (a.correct ? "; " + a.correct.text : "") + ")";
    var pages = Math.max(1, Math.ceil(rows.length / PAGE));
    if (cmpPage >= pages) cmpPage = pages - 1;
    if (cmpPage < 0) cmpPage = 0;
    var shown = rows.slice(cmpPage * PAGE, (cmpPage + 1) * PAGE);
    document.getElementById("cmp-info").textContent = "page " + (cmpPage + 1) + " of " + pages;
    document.getElementById("cmp-prev").disabled = cmpPage === 0;
    document.getElementById("cmp-next").disabled = cmpPage >= pages - 1;
    ensure([{ block: a, indices: shown.map(function (r) { return r.i; }) },
            { block: b, indices: shown.map(function (r) { return r.j; }) }], function () {
      if (my !== cmpToken) return;
      var sa = records(a), sb = records(b);
      table.appendChild(el("thead", null, [el("tr", null, ["Id", "Question", "Target", "Prediction A", "Score A", "Prediction B", "Score B", "Better"].map(
        function (c) { return el("th", { text: c }); }))]));
      var body = el("tbody");
      shown.forEach(function (r) {
        var x = sa[r.i], y = sb[r.j], id = a.ids[r.i];
        var pred = function (s) { return s ? (s.error ? "error: " + s.error : show(s.prediction)) : missingNote(); };
        body.appendChild(el("tr", { cls: "cmp", "data-id": id, "data-better": r.w > 0 ? "a" : r.w < 0 ? "b" : "" }, [
          el("td", null, [openLink(id, function () {
            setAndFire(taskSel, cmpTask.value); setAndFire(modelSel, cmpA.value); openSample(r.i);
          })]),
          x ? questionCell(x) : el("td", { text: missingNote() }),
          el("td", { text: x ? show(x.target) : "" }),
          el("td", { text: pred(x) }), el("td", { cls: "num", text: scoreText(a.scores[r.i]) }),
          el("td", { text: pred(y) }), el("td", { cls: "num", text: scoreText(b.scores[r.j]) }),
          el("td", { text: r.w > 0 ? "A" : r.w < 0 ? "B" : "\u2013" })
        ]));
      });
      table.appendChild(body);
      document.body.dataset.compareRendered = String(shown.length);
    });
  }
  function initCompare() {
    var tasks = Object.keys(DATA.samples).filter(function (t) { return Object.keys(DATA.samples[t]).length > 1; });
    if (!tasks.length) return;
    document.getElementById("compare-section").hidden = false;
    tasks.forEach(function (t) { cmpTask.appendChild(el("option", { value: t, text: t })); });
    function models() {
      var ms = fillModels(cmpA, cmpTask.value, cmpA.value);
      fillModels(cmpB, cmpTask.value, cmpB.value);
      if (cmpB.value === cmpA.value && ms.length > 1) cmpB.value = ms[ms.indexOf(cmpA.value) === 0 ? 1 : 0];
    }
    models();
    function reset() { cmpPage = 0; renderCompare(); }
    cmpTask.addEventListener("change", function () { models(); reset(); });
    cmpA.addEventListener("change", reset);
    cmpB.addEventListener("change", reset);
    cmpFilter.addEventListener("change", reset);
    document.getElementById("cmp-prev").addEventListener("click", function () { cmpPage--; renderCompare(); });
    document.getElementById("cmp-next").addEventListener("click", function () { cmpPage++; renderCompare(); });
    renderCompare();
  }

  function setAndFire(select, value) {
    if (value === undefined || value === null) return;
    select.value = value;
    select.dispatchEvent(new Event(select.tagName === "INPUT" ? "input" : "change"));
  }
  function applyHash() {
    var params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    setAndFire(taskSel, params.get("task"));
    setAndFire(modelSel, params.get("model"));
    setAndFire(filterSel, params.get("filter"));
    setAndFire(search, params.get("q"));
    if (params.get("page")) { page = (parseInt(params.get("page"), 10) || 1) - 1; renderSamples(); }
    if (params.get("sample") !== null) openById(params.get("sample"));
    // compare=TASK&a=MODEL&b=MODEL&cfilter=all|a|b
    if (params.get("compare")) {
      setAndFire(cmpTask, params.get("compare"));
      setAndFire(cmpA, params.get("a"));
      setAndFire(cmpB, params.get("b"));
      setAndFire(cmpFilter, params.get("cfilter"));
      var cmp = document.getElementById("compare-section");
      if (!cmp.hidden && cmp.scrollIntoView) cmp.scrollIntoView();
    }
    // sort=TASK (descending, like one click on its header) or sort=TASK:asc (two clicks)
    var sort = params.get("sort");
    if (sort) {
      var parts = sort.split(":");
      var heads = document.querySelectorAll("#leaderboard thead th");
      heads.forEach(function (th, i) {
        var name = i === 0 ? "model" : DATA.leaderboard.columns[i - 1].task;
        if (name !== parts[0]) return;
        th.click();
        if (parts[1] === "asc") th.click();
      });
    }
  }

  var meta = document.getElementById("meta");
  meta.textContent = "Generated " + DATA.generated + " by evalkit " + DATA.evalkit_version + " \u00b7 " +
    DATA.runs.length + " run(s) \u00b7 " + Math.round(DATA.confidence * 100) + "% bootstrap intervals (" + DATA.n_resamples + " resamples)";
  renderLeaderboard();
  renderPaper();
  renderBreakdowns();
  renderRuns();
  initSamples();
  initCompare();
  applyHash();
  window.addEventListener("hashchange", applyHash);
  document.body.dataset.ready = "1";
})();
