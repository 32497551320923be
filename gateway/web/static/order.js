// Live order status: follows the order's server-sent events and updates the page,
// reloading it once the order settles so the event history is complete.
(function () {
  "use strict";
  var root = document.getElementById("order");
  if (!root || root.dataset.live !== "true" || !window.EventSource) {
    return;
  }
  var statusEl = document.getElementById("order-status");
  var reasonEl = document.getElementById("cancel-reason");
  // Mirrors stepRank on the server: "charged" still shows as shipped.
  var rank = { pending: 1, paid: 2, reserved: 3, shipped: 4, charged: 4, completed: 5 };
  var steps = ["pending", "paid", "reserved", "shipped", "completed"];

  function markSteps(status) {
    var reached = rank[status] || 0;
    document.querySelectorAll("#steps li").forEach(function (li) {
      li.classList.toggle("done", steps.indexOf(li.dataset.step) + 1 <= reached);
    });
  }

  var es = new EventSource("/orders/" + encodeURIComponent(root.dataset.order) + "/events");
  es.addEventListener("status", function (e) {
    var ev = JSON.parse(e.data);
    if (!statusEl) {
      // The order was still being recorded when the page was rendered.
      es.close();
      window.location.reload();
      return;
    }
    statusEl.textContent = ev.label;
    statusEl.className = "status status-" + ev.status;
    if (reasonEl) {
      reasonEl.textContent = ev.cancelReason ? "Reason: " + ev.cancelReason : "";
    }
    markSteps(ev.status);
    if (ev.terminal) {
      es.close();
      if (root.dataset.status !== ev.status) {
        window.location.reload();
      }
    }
  });
})();
