/* The segment builder: condition rows <-> JSON, and a live count from /console/segments/preview.
   Hand-written, no library. Every change rebuilds the JSON, then (debounced) asks for the count. */
(function () {
  "use strict";
  var VOCAB = {{ vocab|tojson }};
  var rowsEl = document.getElementById("rows");
  var jsonEl = document.getElementById("definition");
  var comboEl = document.getElementById("combinator");
  var countEl = document.getElementById("live-count");
  var msEl = document.getElementById("live-ms");
  var problemsEl = document.getElementById("live-problems");
  var sampleEl = document.getElementById("sample");
  var csrf = document.getElementById("csrf").value;
  var timer = null;
  var asked = 0;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }
  function select(field, options, value) {
    var s = el("select", {"data-field": field, "aria-label": field});
    options.forEach(function (o) {
      var opt = el("option", {value: o, text: o});
      if (String(o) === String(value)) { opt.selected = true; }
      s.appendChild(opt);
    });
    return s;
  }
  function input(field, value, type) {
    var i = el("input", {"data-field": field, "aria-label": field, type: type || "text"});
    i.value = value === undefined || value === null ? "" : value;
    return i;
  }
  function list(value) { return Array.isArray(value) ? value.join(", ") : (value === undefined ? "" : String(value)); }
  function scalar(text) { var n = Number(text); return text.trim() !== "" && !isNaN(n) ? n : text.trim(); }
  function split(text) { return text.split(",").map(function (t) { return t.trim(); }).filter(Boolean); }
  function values(op, text, numeric) {
    var conv = numeric ? scalar : function (t) { return t.trim(); };
    if (op === "in" || op === "not_in" || op === "between") { return split(text).map(conv); }
    return conv(text);
  }

  /* One row: kind + fields; `fromJson` fills the fields, `toJson` reads them back. */
  var KINDS = {
    attr: {
      fields: function (c) {
        return [select("attr", VOCAB.attributes, c.attr || "gender"), select("op", VOCAB.attr_ops, c.op || "eq"), input("value", list(c.value))];
      },
      fits: function (c) { return c.within_days === undefined; },
      toJson: function (f) {
        var c = {attr: f.attr, op: f.op};
        if (f.op !== "exists" && f.op !== "not_exists") { c.value = values(f.op, f.value, f.attr === "age"); }
        return c;
      }
    },
    tag: {
      fields: function (c) { return [input("tag", c.tag || ""), select("op", ["has", "not_has"], c.op || "has")]; },
      fits: function () { return true; },
      toJson: function (f) { return {tag: f.tag, op: f.op}; }
    },
    event: {
      fields: function (c) {
        var measure = c.sum ? "sum " + c.sum : "count";
        var cmp = c.count || (c.op ? {op: c.op, value: c.value} : {op: "gte", value: 1});
        var cat = (c.where || []).length ? c.where[0].value : "";
        return [input("event", c.event || "order_paid"), input("within_days", c.within_days || 90, "number"),
          select("measure", ["count", "sum amount"], measure), select("op", VOCAB.number_ops, cmp.op),
          input("value", list(cmp.value)), input("category", list(cat))];
      },
      fits: function (c) {
        var w = c.where || [];
        return !c.distinct && (w.length === 0 || (w.length === 1 && w[0].prop === "category" && w[0].op === "in"));
      },
      toJson: function (f) {
        var c = {event: f.event};
        if (f.within_days) { c.within_days = Number(f.within_days); }
        if (f.category.trim()) { c.where = [{prop: "category", op: "in", value: split(f.category)}]; }
        var v = values(f.op, f.value, true);
        if (f.measure === "count") { c.count = {op: f.op, value: v}; } else { c.sum = "amount"; c.op = f.op; c.value = v; }
        return c;
      }
    },
    lifecycle: {
      fields: function (c) { return [select("op", ["in", "not_in"], c.lifecycle || "in"), input("value", list(c.value || VOCAB.lifecycle[0]))]; },
      fits: function (c) { return c.lifecycle === "in" || c.lifecycle === "not_in"; },
      toJson: function (f) { return {lifecycle: f.op, value: split(f.value)}; }
    },
    rfm: {
      fields: function (c) { return [select("op", ["in", "not_in"], c.rfm || "in"), input("value", list(c.value || VOCAB.rfm[0]))]; },
      fits: function (c) { return c.rfm === "in" || c.rfm === "not_in"; },
      toJson: function (f) { return {rfm: f.op, value: split(f.value)}; }
    },
    segment: {
      fields: function (c) { return [input("segment", c.segment || "")]; },
      fits: function () { return true; },
      toJson: function (f) { return {segment: f.segment}; }
    },
    coupon: {
      fields: function (c) { return [input("coupon", c.coupon || ""), select("state", VOCAB.coupon_states, c.state || "available")]; },
      fits: function (c) { return c.expires_within_days === undefined; },
      toJson: function (f) { return {coupon: f.coupon, state: f.state}; }
    },
    json: {
      fields: function (c) { var t = el("textarea", {"data-field": "json", "aria-label": "json", rows: "3"}); t.value = JSON.stringify(c); return [t]; },
      fits: function () { return true; },
      toJson: function (f) { return JSON.parse(f.json); }
    }
  };

  function kindOf(c) {
    var keys = ["attr", "tag", "event", "lifecycle", "rfm", "segment", "coupon"];
    for (var i = 0; i < keys.length; i++) {
      if (c && typeof c === "object" && c[keys[i]] !== undefined && KINDS[keys[i]].fits(c)) { return keys[i]; }
    }
    return "json";
  }

  function addRow(kind, condition, negated) {
    var li = el("li", {"data-kind": kind});
    var not = el("input", {type: "checkbox", "data-field": "not", "aria-label": "not"});
    not.checked = !!negated;
    li.appendChild(el("label", {"class": "not"}, [not, document.createTextNode(" not")]));
    li.appendChild(el("strong", {text: kind}));
    KINDS[kind].fields(condition || {}).forEach(function (f) { li.appendChild(f); });
    var remove = el("button", {type: "button", "class": "link", text: "remove"});
    remove.addEventListener("click", function () { li.remove(); changed(); });
    li.appendChild(remove);
    rowsEl.appendChild(li);
  }

  function readRows() {
    var conditions = [];
    rowsEl.querySelectorAll("li").forEach(function (li) {
      var f = {};
      li.querySelectorAll("[data-field]").forEach(function (n) { f[n.getAttribute("data-field")] = n.type === "checkbox" ? n.checked : n.value; });
      var c = KINDS[li.getAttribute("data-kind")].toJson(f);
      conditions.push(f.not ? {not: c} : c);
    });
    var d = {};
    d[comboEl.value] = conditions;
    return d;
  }

  function showRows(definition) {
    rowsEl.textContent = "";
    var combo = definition.any !== undefined ? "any" : "all";
    var children = definition[combo];
    if (!Array.isArray(children)) { combo = "all"; children = [definition]; }
    comboEl.value = combo;
    children.forEach(function (c) {
      var negated = c && c.not !== undefined && Object.keys(c).length === 1;
      var inner = negated ? c.not : c;
      var kind = kindOf(inner);
      addRow(kind, inner, negated);
    });
  }

  function changed() {
    try { jsonEl.value = JSON.stringify(readRows(), null, 2); } catch (e) { problems(["$: " + e.message]); return; }
    schedule();
  }
  function schedule() {
    countEl.classList.add("stale");
    clearTimeout(timer);
    timer = setTimeout(preview, 300);
  }
  function problems(list) {
    problemsEl.hidden = !list.length;
    problemsEl.textContent = list.join("; ");
  }

  function preview() {
    var definition;
    try { definition = JSON.parse(jsonEl.value); } catch (e) { problems(["$: not JSON (" + e.message + ")"]); return; }
    var ticket = ++asked;
    fetch("/console/segments/preview", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({definition: definition, sample_size: 10})
    }).then(function (r) { return r.json().then(function (body) { return {ok: r.ok, body: body}; }); })
      .then(function (res) {
        if (ticket !== asked) { return; }  /* an older answer arriving late must not win */
        if (!res.ok) { problems(res.body.problems || [String(res.body.detail || "error")]); return; }
        problems([]);
        countEl.textContent = res.body.count.toLocaleString();
        countEl.setAttribute("data-count", String(res.body.count));
        countEl.classList.remove("stale");
        msEl.textContent = res.body.elapsed_ms + " ms · " + (res.body.answered_by || "SQL");
        sampleEl.textContent = "";
        res.body.sample.forEach(function (m) {
          sampleEl.appendChild(el("tr", {}, [el("td", {text: String(m.member_id)}), el("td", {text: m.name}),
            el("td", {text: m.gender || ""}), el("td", {text: m.store_code || ""})]));
        });
      }).catch(function (e) { problems([String(e)]); });
  }

  rowsEl.addEventListener("input", changed);
  rowsEl.addEventListener("change", changed);
  comboEl.addEventListener("change", changed);
  jsonEl.addEventListener("input", function () {
    try { showRows(JSON.parse(jsonEl.value)); problems([]); } catch (e) { problems(["$: not JSON (" + e.message + ")"]); return; }
    schedule();
  });
  document.getElementById("add-condition").addEventListener("click", function () {
    addRow(document.getElementById("new-kind").value, {}, false);
    changed();
  });
  try { showRows(JSON.parse(jsonEl.value)); } catch (e) { problems(["$: not JSON (" + e.message + ")"]); }
  preview();
})();
