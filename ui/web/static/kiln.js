// Kiln's pages are rendered on the server. This script keeps the parts of
// a page marked data-live="BLOCK" up to date: it re-fetches the page with
// the header Kiln-Fragment: BLOCK and swaps in the answer when it changed.
// Forms marked data-confirm ask before they submit.
(function () {
  "use strict";
  var interval = 1500;

  function refresh(el) {
    var block = el.getAttribute("data-live");
    return fetch(location.href, {
      headers: { "Kiln-Fragment": block },
      credentials: "same-origin",
      cache: "no-store",
    }).then(function (r) {
      if (r.status === 401) { location.reload(); return null; }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (html !== null && html !== el.getAttribute("data-html")) {
        el.innerHTML = html;
        el.setAttribute("data-html", html);
      }
    }).catch(function () { /* the server is away; try again next time */ });
  }

  function tick() {
    if (!document.hidden) {
      document.querySelectorAll("[data-live]").forEach(refresh);
    }
    setTimeout(tick, interval);
  }

  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });

  if (document.querySelector("[data-live]")) { setTimeout(tick, interval); }
})();
