// Live timeline: refetch the case timeline every 3 seconds and swap it in when it changed.
// The page works without this script; it only saves a manual reload.
(function () {
  var live = document.getElementById("live");
  if (!live) return;
  var src = live.getAttribute("data-src");
  var last = live.innerHTML;
  setInterval(function () {
    fetch(src, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html !== last) { live.innerHTML = html; last = html; }
      })
      .catch(function () {});
  }, 3000);
})();
