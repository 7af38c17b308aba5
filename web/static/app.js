// SMS Genie page scripts: live dashboard (server-sent events) and upload progress. No build step.
(function () {
  "use strict";

  function lookup(obj, path) {
    return path.split(".").reduce(function (o, k) { return o == null ? o : o[k]; }, obj);
  }

  var dash = document.getElementById("dashboard");
  if (dash && window.EventSource) {
    var source = new EventSource(dash.dataset.events);
    source.onmessage = function (event) {
      var data = JSON.parse(event.data);
      document.querySelectorAll("[data-field]").forEach(function (el) {
        var value = lookup(data, el.dataset.field);
        el.textContent = value == null ? (el.dataset.field === "eta_minutes" ? "-" : "") : value;
      });
    };
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
