// Live timeline. With server-sent events the server says when the case changed and the script
// fetches the timeline fragment then; where EventSource is missing, or while the stream is down,
// it polls the fragment every 3 seconds instead. The page works without this script; it only
// saves a manual reload.
(function () {
  var live = document.getElementById("live");
  if (!live) return;
  var src = live.getAttribute("data-src");
  var events = live.getAttribute("data-events");
  var last = live.innerHTML;
  var poller = null;
  // The change number the shown timeline was read at: the server answers 204 (and reads
  // nothing, so audits nothing) while the case has not changed since.
  function seq() {
    var t = document.getElementById("timeline");
    return t ? t.getAttribute("data-seq") : null;
  }
  function refresh() {
    var since = seq();
    var url = since ? src + "?since=" + encodeURIComponent(since) : src;
    // Marked as the page's own request: it does not keep an unattended page signed in.
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "X-Fieldcase-Background": "1" } })
      // A redirect means the session ended (to the login page): keep what is shown.
      .then(function (r) { return r.ok && r.status !== 204 && !r.redirected ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html !== last) { live.innerHTML = html; last = html; }
      })
      .catch(function () {});
  }
  function poll(on) {
    if (on && poller === null) { poller = setInterval(refresh, 3000); }
    if (!on && poller !== null) { clearInterval(poller); poller = null; }
  }
  if (!window.EventSource || !events) { poll(true); return; }
  var stream = new EventSource(events);
  live.setAttribute("data-live", "connecting");
  // On (re)connecting, catch up with anything missed, and stop polling.
  stream.onopen = function () { live.setAttribute("data-live", "events"); poll(false); refresh(); };
  stream.addEventListener("changed", refresh);
  // The browser reconnects by itself; poll meanwhile.
  stream.onerror = function () { live.setAttribute("data-live", "polling"); poll(true); };
})();

// The case file's "print" button (the page prints without it too, from the browser's menu).
(function () {
  var button = document.getElementById("print-now");
  if (button) { button.addEventListener("click", function () { window.print(); }); }
})();
