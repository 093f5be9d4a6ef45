// Kiln's pages are rendered on the server. This script keeps the parts of
// a page marked data-live="BLOCK" up to date: it re-fetches the page with
// the header Kiln-Fragment: BLOCK and swaps in the answer when it changed.
// The block's ETag goes back in If-None-Match, so an unchanged block costs
// a 304 and no body. Forms, or the buttons that submit them, marked
// data-confirm ask before they submit.
//
// When is a page refreshed? A page whose state lives in the store's runs,
// task instances and backfills names the API's event stream in
// main[data-events] (GET /api/v1/events filtered to its DAG or run), and
// is refreshed when an event arrives (at most every `gap` ms), when the
// stream (re)opens, and every `fallback` ms in case the stream missed
// something. Other pages, and a page whose stream is down, are refreshed
// every `poll` ms. <html data-live-by="events|poll"> says which holds now.
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    // A button may ask for itself, for a form that several buttons share.
    var msg = (ev.submitter && ev.submitter.getAttribute("data-confirm")) || ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });
})();
// Times: pages are rendered in UTC, with the DAG's timezone beside
// (<time datetime=UTC data-tz=ZONE>). The header's selector picks the zone
// they are shown in, UTC, the browser's ("local") or the DAG's, and
// localStorage remembers it for this browser. A <time data-rel> shows how
// far it is from now, and only its title changes.
(function () {
  "use strict";
  var key = "kiln.tz";
  var select = document.getElementById("tz-select");
  function mode() {
    try { return localStorage.getItem(key) || "utc"; } catch (e) { return "utc"; }
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  // text formats a date on the wall clock of zone (undefined: the
  // browser's) as the server does: "2026-01-05 03:00 CET".
  function text(d, zone) {
    var opts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
      minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short" };
    if (zone) { opts.timeZone = zone; }
    var p = {};
    new Intl.DateTimeFormat("en-US", opts).formatToParts(d).forEach(function (x) { p[x.type] = x.value; });
    var s = p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute;
    if (p.second !== "00") { s += ":" + p.second; }
    return s + " " + (zone === "UTC" ? "UTC" : p.timeZoneName);
  }
  function apply(root) {
    var m = mode();
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (!el.hasAttribute("data-utc")) {
        el.setAttribute("data-utc", el.hasAttribute("data-rel") ? el.title : el.textContent);
      }
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) { return; }
      var shown = el.getAttribute("data-utc");
      if (m === "local") {
        shown = text(d);
      } else if (m === "dag" && el.getAttribute("data-tz")) {
        try { shown = text(d, el.getAttribute("data-tz")); } catch (e) { /* unknown zone: UTC */ }
      }
      if (el.hasAttribute("data-rel")) { el.title = shown; } else { el.textContent = shown; }
    });
  }
  window.kilnTimes = apply;
  if (select) {
    select.value = mode();
    select.addEventListener("change", function () {
      try { localStorage.setItem(key, select.value); } catch (e) { /* private mode: this page only */ }
      apply(document);
    });
  }
  apply(document);
})();
(function () {
  "use strict";
  var poll = 1500, fallback = 30000, gap = 400;
  var blocks = document.querySelectorAll("[data-live]");
  if (!blocks.length) { return; }
  var root = document.documentElement;
  var main = document.querySelector("main[data-events]");
  var es = null;

  function refresh(el) {
    var block = el.getAttribute("data-live");
    var headers = { "Kiln-Fragment": block };
    var tag = el.getAttribute("data-etag");
    if (tag) { headers["If-None-Match"] = tag; }
    return fetch(location.href, {
      headers: headers,
      credentials: "same-origin",
      cache: "no-store",
    }).then(function (r) {
      if (r.status === 401) { location.reload(); return null; }
      if (r.status !== 200) { return null; }
      var next = r.headers.get("ETag");
      return r.text().then(function (html) {
        if (next && next === tag) { return; }
        el.innerHTML = html;
        if (window.kilnTimes) { window.kilnTimes(el); }
        if (next) { el.setAttribute("data-etag", next); }
      });
    }).catch(function () { /* the server is away; try again next time */ });
  }

  // Refreshes never overlap: one asked for while another runs follows it,
  // at least `gap` ms after the last began. A hidden page waits until it
  // is shown again.
  var running = false, wanted = false, last = 0, soonTimer = null;
  function refreshAll() {
    if (document.hidden) { wanted = true; return; }
    if (running) { wanted = true; return; }
    running = true;
    wanted = false;
    last = Date.now();
    var all = Array.prototype.map.call(document.querySelectorAll("[data-live]"), refresh);
    Promise.all(all).then(function () {
      running = false;
      if (wanted) { soon(); }
    });
  }
  function soon() {
    if (soonTimer) { return; }
    soonTimer = setTimeout(function () {
      soonTimer = null;
      refreshAll();
    }, Math.max(0, last + gap - Date.now()));
  }

  function live() { return es !== null && es.readyState === EventSource.OPEN; }
  var periodic = null;
  function arm() {
    clearTimeout(periodic);
    root.setAttribute("data-live-by", live() ? "events" : "poll");
    periodic = setTimeout(function () {
      if (!document.hidden) { refreshAll(); }
      arm();
    }, live() ? fallback : poll);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && wanted) { soon(); }
  });

  if (main && window.EventSource) {
    es = new EventSource(main.getAttribute("data-events"), { withCredentials: true });
    ["run", "task", "try", "backfill", "lost"].forEach(function (kind) {
      es.addEventListener(kind, soon);
    });
    // Whatever changed before the stream (re)opened came with no event.
    es.onopen = function () { soon(); arm(); };
    es.onerror = arm; // polling until the browser has reconnected
  }
  arm();
})();

// ==== DAG pages (pages_dag_grid.go): a select marked data-autosubmit
// submits its form when it changes; its fallback button is then hidden.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) { el.form.submit(); }
  });
})();

// ==== Run, log and pools pages (pages_runs.go, pages_logs.go,
// pages_pools.go).
//
// 1. Forms inside a live block (the run page's clear forms, the pools
//    page's slot inputs) are replaced by every update that changes the
//    block. What the user ticked or typed there, and the focus, carry over
//    to the new form.
// 2. A running try's log follows: pre#log[data-follow] names the API's
//    event stream from where the rendered text ends; each event's data is
//    the next piece of the log, and the "end" event closes it with the
//    try's state.
(function () {
  "use strict";

  // 1. Live forms.
  var kept = {};       // control key -> {checked, value}
  var focused = null;  // key of the focused control in a live block

  function keyOf(el) {
    if (!el.form || !el.name || !el.closest("[data-live]")) { return null; }
    var f = el.form;
    var who = f.elements.namedItem("tasks") || f.elements.namedItem("task");
    var key = f.getAttribute("action") + "|" + (who && who.value ? who.value : "") + "|" + el.name;
    // Checkboxes that share a name (the runs to compare) differ by value.
    return el.type === "checkbox" ? key + "|" + el.value : key;
  }

  function remember(ev) {
    var el = ev.target, k = keyOf(el);
    if (k && el.type !== "hidden") { kept[k] = { checked: el.checked, value: el.value }; }
  }
  document.addEventListener("change", remember);
  document.addEventListener("input", remember);
  document.addEventListener("focusin", function (ev) { focused = keyOf(ev.target); });
  document.addEventListener("focusout", function (ev) {
    var el = ev.target;
    setTimeout(function () { if (el.isConnected && focused === keyOf(el)) { focused = null; } }, 0);
  });
  document.addEventListener("submit", function (ev) {
    if (ev.defaultPrevented) { return; }
    Array.prototype.forEach.call(ev.target.elements, function (el) {
      var k = keyOf(el);
      if (k) { delete kept[k]; }
    });
  });

  function restore(block) {
    block.querySelectorAll("input, select, textarea").forEach(function (el) {
      var k = keyOf(el);
      if (!k) { return; }
      var s = kept[k];
      if (s) {
        if (el.type === "checkbox" || el.type === "radio") { el.checked = s.checked; } else { el.value = s.value; }
      }
      if (k === focused && (!document.activeElement || document.activeElement === document.body)) { el.focus(); }
    });
  }
  var observer = new MutationObserver(function (records) {
    records.forEach(function (r) { restore(r.target); });
  });
  document.querySelectorAll("[data-live]").forEach(function (block) {
    observer.observe(block, { childList: true });
  });

  // 2. Following a log.
  var pre = document.querySelector("pre#log[data-follow]");
  if (!pre || !window.EventSource) { return; }
  var max = parseInt(pre.getAttribute("data-max-bytes"), 10) || 2097152;
  var status = document.getElementById("log-status");
  var length = pre.textContent.length;
  var cut = false;
  pre.classList.add("following");

  function say(text) { if (status) { status.textContent = text; } }

  function append(text) {
    if (!text) { return; }
    var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 24;
    pre.appendChild(document.createTextNode(text));
    length += text.length;
    if (length > max * 1.25) {
      // Keep the page's share of the log: its end, from a whole line.
      var all = pre.textContent, from = all.length - max, nl = all.indexOf("\n", from);
      pre.textContent = all.slice(nl >= 0 ? nl + 1 : from);
      length = pre.textContent.length;
      cut = true;
    }
    if (atEnd) { pre.scrollTop = pre.scrollHeight; }
  }

  function stop(text) {
    es.close();
    pre.classList.remove("following");
    say(text + (cut ? " The page shows the log's end; download it whole." : ""));
  }

  var es = new EventSource(pre.getAttribute("data-follow"), { withCredentials: true });
  es.onmessage = function (ev) { append(ev.data); };
  es.addEventListener("end", function (ev) {
    var end = {};
    try { end = JSON.parse(ev.data); } catch (e) { /* keep what we have */ }
    var state = document.getElementById("log-state");
    if (state && end.state) {
      state.setAttribute("data-state", end.state);
      state.textContent = end.state;
    }
    stop("The try ended" + (end.state ? ": " + end.state + "." : "."));
  });
  es.addEventListener("error", function (ev) {
    if (ev.data !== undefined) { // the server's own error event
      var msg = ev.data;
      try { msg = JSON.parse(ev.data).error || msg; } catch (e) { /* as sent */ }
      stop("Following the log failed: " + msg);
    } else if (es.readyState === EventSource.CLOSED) {
      stop("Lost the log stream; reload the page to follow it again.");
    } else {
      say("Reconnecting to the log stream…");
    }
  });
  es.onopen = function () { say("Following the log while the try runs…"); };
})();
