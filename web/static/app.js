// SMS Genie page scripts: live dashboard (server-sent events) and upload progress. No build step.
(function () {
  "use strict";

  function lookup(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? o : o[k]; }, obj);
  }

  function show(data) {
    document.querySelectorAll("[data-field]").forEach(function (el) {
      var value = lookup(data, el.dataset.field);
      if (value === undefined) { return; }  // e.g. a list no longer among the newest: leave its row as it is
      el.textContent = value == null ? (el.dataset.field === "progress.minutes_left" ? "-" : "") : value;
    });
  }

  // The dashboard asks for a fresh snapshot every few seconds: a short request each time, so open
  // dashboards never hold the box's server threads. A session that ended answers with the login page
  // (not JSON): then the page reloads, and the browser lands on the login.
  var dash = document.getElementById("dashboard");
  if (dash && window.fetch) {
    var every = 1000 * parseFloat(dash.dataset.every || "2");
    var ask = function () {
      fetch(dash.dataset.poll, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) {
          if (!r.ok || (r.headers.get("Content-Type") || "").indexOf("application/json") !== 0) {
            throw new Error("signed out");
          }
          return r.json();
        })
        .then(function (data) { show(data); setTimeout(ask, every); })
        .catch(function (e) {
          if (e.message === "signed out") { window.location.reload(); } else { setTimeout(ask, 3 * every); }
        });
    };
    setTimeout(ask, every);
  }

  var form = document.getElementById("upload-form");
  if (form && window.XMLHttpRequest && window.FormData) {
    form.addEventListener("submit", function (event) {
      var bar = document.getElementById("upload-progress");
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action || window.location.href);
      bar.hidden = false;
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) { bar.value = 100 * e.loaded / e.total; } };
      xhr.onload = function () {
        document.open();
        document.write(xhr.responseText);
        document.close();
        history.replaceState(null, "", xhr.responseURL);
      };
      xhr.send(new FormData(form));
    });
  }
})();

// The box's panel (/device): the OLED's frame, refreshed; its buttons, pressed with fetch.
(function () {
  "use strict";
  var device = document.getElementById("device");
  if (!device || !window.fetch) { return; }
  var img = document.getElementById("oled");
  function refresh() {
    var next = new Image();
    next.onload = function () { img.src = next.src; setTimeout(refresh, 300); };
    next.onerror = function () { setTimeout(refresh, 2000); };
    next.src = device.dataset.frame + "?t=" + Date.now();
  }
  setTimeout(refresh, 300);
  function press(name, hold) {
    var body = new FormData();
    if (hold) { body.append("hold", "1"); }
    fetch(device.dataset.press.replace("NAME", name), {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": device.dataset.csrf }
    });
  }
  device.querySelectorAll("[data-button]").forEach(function (button) {
    button.addEventListener("click", function () { press(button.dataset.button, button.dataset.hold === "1"); });
  });
  var keys = { ArrowUp: "up", ArrowDown: "down", Enter: "ok", Escape: "back", Backspace: "back" };
  document.addEventListener("keydown", function (event) {
    var name = keys[event.key];
    if (!name || event.target.tagName === "INPUT") { return; }
    event.preventDefault();
    press(name, name === "back" && event.shiftKey);
  });
})();

// A long job (a big list read or queued): its progress asked for every second, then on to its answer.
(function () {
  "use strict";
  var job = document.getElementById("job");
  if (!job || !window.fetch) { return; }
  var bar = document.getElementById("job-bar");
  function field(name) { return job.querySelector("[data-job='" + name + "']"); }
  function ask() {
    fetch(job.dataset.poll, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (!r.ok || (r.headers.get("Content-Type") || "").indexOf("application/json") !== 0) {
          throw new Error("signed out");
        }
        return r.json();
      })
      .then(function (data) {
        field("rows").textContent = data.rows;
        field("refused").textContent = data.refused;
        field("left").textContent = data.seconds_left == null ? "-" : Math.ceil(data.seconds_left);
        field("waiting").hidden = data.state !== "waiting";
        if (data.total) { bar.hidden = false; bar.value = Math.min(100, 100 * data.rows / data.total); }
        if (data.state === "done" || data.state === "failed") { window.location.href = job.dataset.next; return; }
        setTimeout(ask, 1000);
      })
      .catch(function (e) {
        if (e.message === "signed out") { window.location.reload(); } else { setTimeout(ask, 3000); }
      });
  }
  setTimeout(ask, 1000);
})();
