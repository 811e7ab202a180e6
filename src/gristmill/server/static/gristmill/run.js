// Keeps a queued or running run's page up to date from the REST API, twice a second while it
// runs (the workers write what steps report four times a second) and once a second while it
// is queued: the state, the steps, the stage and progress bar, and the log (read on from the last line it
// has, never fetched twice). When the run ends it stops and reloads the page once, so that
// the server renders the results, the error, or the cancellation. While stale results are
// recomputed, a step's "stale" mark goes once the step has a newer attempt (it was recomputed);
// its new result shows with the reload.
// The texts made here must read like those of gristmill/server/web/runs.py.
(function () {
  "use strict";

  var INTERVAL = 1000; // while queued
  var RUNNING_INTERVAL = 500;
  var LOG_LIMIT = 1000;
  var KEEP_LINES = 5000; // the log shown is a tail: older lines leave the page
  var TERMINAL = ["succeeded", "failed", "cancelled", "expired"];

  var main = document.getElementById("run");
  if (!main || TERMINAL.indexOf(main.dataset.state) !== -1) {
    return;
  }
  var statusUrl = main.dataset.statusUrl;
  var logUrl = main.dataset.logUrl;
  var after = parseInt(main.dataset.logAfter || "0", 10) || 0;

  function byId(id) {
    return document.getElementById(id);
  }

  function setText(element, text) {
    if (element && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function durationText(seconds) {
    if (seconds === null || seconds === undefined) {
      return "";
    }
    if (seconds < 1) {
      return Math.round(seconds * 1000) + " ms";
    }
    if (seconds < 60) {
      return seconds.toFixed(1) + " s";
    }
    var whole = Math.round(seconds);
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (whole < 3600) {
      return Math.floor(whole / 60) + " min " + pad(whole % 60) + " s";
    }
    return Math.floor(whole / 3600) + " h " + pad(Math.floor((whole % 3600) / 60)) + " min";
  }

  function stepTitle(name) {
    var title = document.querySelector("#step-" + name + " .step-title");
    return title ? title.textContent : name;
  }

  function stageText(run) {
    if (run.state === "queued") {
      return "Waiting for a worker.";
    }
    if (run.cancel_requested) {
      return "Cancelling: waiting for the current step to stop.";
    }
    if (!run.current_step) {
      return "Starting.";
    }
    var text = "Running " + stepTitle(run.current_step);
    return run.stage ? text + ": " + run.stage : text;
  }

  function showRun(run) {
    main.dataset.state = run.state;
    var state = byId("run-state");
    if (state) {
      state.className = "state state-" + run.state;
      setText(state, run.state);
    }
    run.steps.forEach(function (step) {
      var item = byId("step-" + step.name);
      if (!item) {
        return;
      }
      item.className = "step state-" + step.state;
      setText(item.querySelector(".step-state"), step.state);
      setText(item.querySelector(".step-attempt"), step.attempt ? "attempt " + step.attempt : "");
      setText(item.querySelector(".step-duration"), durationText(step.duration));
      var stale = item.querySelector(".step-stale");
      if (stale && stale.dataset.attempt !== String(step.attempt || "")) {
        stale.parentNode.removeChild(stale);
      }
    });
    setText(byId("run-stage"), stageText(run));
    var bar = byId("run-progress");
    if (bar) {
      var progress = run.progress;
      if (progress && progress.total) {
        bar.max = progress.total;
        bar.value = progress.done;
        setText(bar, progress.done + " of " + progress.total);
      } else {
        bar.removeAttribute("value"); // indeterminate
        setText(bar, "");
      }
    }
  }

  function showLog(answer) {
    var log = byId("run-log");
    if (!log || !answer.lines.length) {
      return;
    }
    var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    var text = answer.lines.map(function (line) { return line.text + "\n"; }).join("");
    log.appendChild(document.createTextNode(text));
    while (log.childNodes.length > 1 && log.textContent.split("\n").length > KEEP_LINES) {
      log.removeChild(log.firstChild);
    }
    if (atBottom) {
      log.scrollTop = log.scrollHeight;
    }
  }

  function getJson(url) {
    return fetch(url, {headers: {Accept: "application/json"}, cache: "no-store"}).then(
      function (response) {
        if (!response.ok) {
          var error = new Error(url + " answered " + response.status);
          error.status = response.status;
          throw error;
        }
        return response.json();
      }
    );
  }

  function poll() {
    getJson(logUrl + "?after=" + after + "&limit=" + LOG_LIMIT)
      .then(function (answer) {
        showLog(answer);
        after = answer.next;
        return getJson(statusUrl);
      })
      .then(function (run) {
        showRun(run);
        if (TERMINAL.indexOf(run.state) !== -1) {
          window.location.reload(); // the server renders the final state
          return;
        }
        window.setTimeout(poll, run.state === "running" ? RUNNING_INTERVAL : INTERVAL);
      })
      .catch(function (error) {
        if (error.status === 404) {
          window.location.reload(); // the run is gone: the page says so
          return;
        }
        window.setTimeout(poll, INTERVAL); // a network hiccup: try again
      });
  }

  window.setTimeout(poll, INTERVAL);
})();
