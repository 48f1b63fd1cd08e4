// The QR page follows its order: a long poll on /pay/{no}/status waits for the status to change,
// then the page is loaded again once, now showing the outcome. No reload loop, no timers racing.
(function () {
  "use strict";
  var follow = document.getElementById("follow");
  if (!follow) return;
  var url = follow.getAttribute("data-status-url");
  var shown = follow.getAttribute("data-status");
  var failures = 0;
  function poll() {
    fetch(url + "?since=" + encodeURIComponent(shown) + "&wait=25", { cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (body) {
        failures = 0;
        if (body.status !== shown) {
          location.replace(location.href);
        } else {
          poll();
        }
      })
      .catch(function () {
        failures += 1;
        setTimeout(poll, Math.min(30000, 1000 * Math.pow(2, failures)));
      });
  }
  poll();
})();
