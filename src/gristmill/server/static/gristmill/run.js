// Keeps a queued or running run's page up to date from the REST API, twice a second while it
// runs (the workers write what steps report four times a second) and once a second while it
// is queued: the state, the steps, the stage and progress bar, and the log (read on from the last line it
// has, never fetched twice). When the run ends it stops and reloads the page once, so that
// the server renders the results, the error, or the cancellation. While stale results are
// recomputed, a step's "stale" mark goes once the step has a newer attempt (it was recomputed);
// its new result shows with the reload.
// Each map step has a panel (#map-STEP) built from the status's `maps`: items done of total,
// batches by state, findings by kind with a few examples, marked "partial — N of M batches"
// while batches remain, and its failed batches. Never a row per item: the status carries sums.
// The texts made here must read like those of gristmill/server/web/runs.py.
(function () {
  "use strict";

  var INTERVAL = 1000; // while queued
  var RUNNING_INTERVAL = 500;
  var LOG_LIMIT = 1000;
  var KEEP_LINES = 5000; // the log shown is a tail: older lines leave the page
  var TERMINAL = ["succeeded", "failed", "cancelled", "expired"];
  var EXAMPLES_SHOWN = 3; // as runs.py's EXAMPLES_SHOWN, KINDS_SHOWN and FAILED_SHOWN
  var KINDS_SHOWN = 12;
  var FAILED_SHOWN = 5;

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

  function numberText(n) {
    return Number(n).toLocaleString("en-US");
  }

  function exampleText(finding) {
    var text = JSON.stringify(finding);
    return text.length <= 200 ? text : text.slice(0, 199) + "\u2026";
  }

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function itemsText(map) {
    var text = numberText(map.items_done) + " of " + numberText(map.items_total) + " items";
    return map.items_failed ? text + ", " + numberText(map.items_failed) + " failed" : text;
  }

  function batchesText(map) {
    var parts = ["done", "pending"].map(function (state) {
      return numberText(map.batches[state] || 0) + " " + state;
    });
    ["failed", "skipped"].forEach(function (state) {
      if (map.batches[state]) {
        parts.push(numberText(map.batches[state]) + " " + state);
      }
    });
    return "Batches: " + parts.join(", ") + " (of " + numberText(map.batches_total) + ")";
  }

  function partialText(map) {
    var ended = map.batches_total - (map.batches.pending || 0);
    return "partial \u2014 " + numberText(ended) + " of " + numberText(map.batches_total) +
      " batches";
  }

  function kindRow(map, kind) {
    var examples = (map.examples[kind] || []).slice(0, EXAMPLES_SHOWN).map(function (f) {
      return el("li", {}, [el("code", {}, [exampleText(f)])]);
    });
    return el("tr", {"class": "map-kind", "data-kind": kind}, [
      el("th", {scope: "row"}, [kind]),
      el("td", {"class": "num"}, [numberText(map.counts[kind])]),
      el("td", {}, [el("ul", {"class": "map-examples"}, examples)])
    ]);
  }

  function failedBatch(batch) {
    var first = batch.first_item;
    var text = "Batch " + batch.number + " (items " + numberText(first) + " to " +
      numberText(first + batch.items - 1) + ")";
    var children = [text];
    if (batch.error) {
      children.push(": ", el("span", {"class": "error"}, [batch.error]));
    }
    if (batch.failed_items.length) {
      var items = batch.failed_items.slice(0, 5).map(function (failed) {
        return el("li", {}, ["item " + numberText(failed.item) + ": " + failed.error]);
      });
      if (batch.failed_items_total > 5) {
        items.push(el("li", {}, ["and " + (batch.failed_items_total - 5) + " more"]));
      }
      children.push(el("ul", {}, items));
    }
    return el("li", {"class": "map-failed-batch"}, children);
  }

  function mapPanel(map, title) {
    var kinds = Object.keys(map.counts).sort(function (a, b) {
      return map.counts[b] - map.counts[a] || (a < b ? -1 : a > b ? 1 : 0);
    });
    var rows = kinds.slice(0, KINDS_SHOWN).map(function (kind) { return kindRow(map, kind); });
    if (!rows.length) {
      rows = [el("tr", {"class": "map-none"}, [
        el("td", {colspan: "3"}, [map.partial ? "No findings yet." : "No findings."])
      ])];
    }
    var mark = el("span", {"class": "map-partial"}, [partialText(map)]);
    mark.hidden = !map.partial;
    var bar = el("progress", {
      "class": "map-progress", max: String(map.items_total || 1), value: String(map.items_done),
      "aria-label": "Items of " + title + " done"
    }, [itemsText(map)]);
    var children = [
      el("h3", {}, [title + " ", mark]),
      bar,
      el("p", {"class": "map-items"}, [itemsText(map)]),
      el("p", {"class": "map-batches"}, [batchesText(map)]),
      el("table", {"class": "map-counts"}, [
        el("caption", {}, ["Findings by kind" + (map.partial ? ", so far" : "")]),
        el("thead", {}, [el("tr", {}, [
          el("th", {scope: "col"}, ["Kind"]),
          el("th", {scope: "col"}, ["Count"]),
          el("th", {scope: "col"}, ["Examples"])
        ])]),
        el("tbody", {}, rows)
      ])
    ];
    if (kinds.length > KINDS_SHOWN) {
      var more = kinds.slice(KINDS_SHOWN).map(function (kind) { return kindRow(map, kind); });
      children.push(el("details", {"class": "map-more-kinds"}, [
        el("summary", {}, [(kinds.length - KINDS_SHOWN) + " more kinds"]),
        el("table", {"class": "map-counts"}, [el("tbody", {}, more)])
      ]));
    }
    var failed = el("div", {"class": "map-failed"}, [
      el("h4", {}, ["Failed batches: ",
        el("span", {"class": "map-failed-count"}, [String(map.failed_batches_total)])]),
      el("ul", {"class": "map-failed-list"},
        map.failed_batches.slice(0, FAILED_SHOWN).map(failedBatch))
    ]);
    if (map.failed_batches.length > FAILED_SHOWN) {
      failed.appendChild(el("details", {"class": "map-more-failed"}, [
        el("summary", {}, [(map.failed_batches.length - FAILED_SHOWN) + " more failed batches"]),
        el("ul", {}, map.failed_batches.slice(FAILED_SHOWN).map(failedBatch))
      ]));
    }
    failed.hidden = !map.failed_batches_total;
    children.push(failed, el("p", {"class": "map-links"}, [
      el("a", {"class": "map-download", href: map.findings_jsonl_url},
        ["Download findings (JSON Lines)"]),
      " \u00b7 ",
      el("a", {"class": "map-show", href: "?findings=" + encodeURIComponent(map.step) +
        "#findings"}, ["Show findings, a page at a time"])
    ]));
    return el("article", {
      "class": "map-panel" + (map.partial ? " partial" : ""),
      id: "map-" + map.step,
      "data-step": map.step
    }, children);
  }

  var shownMaps = {}; // what each panel shows, as JSON: rebuilt only when it changes

  function showMaps(maps) {
    var section = byId("maps");
    if (!section || !maps || !maps.length) {
      return;
    }
    section.hidden = false;
    maps.forEach(function (map) {
      var seen = JSON.stringify(map);
      var old = byId("map-" + map.step);
      if (old && shownMaps[map.step] === seen) {
        return;
      }
      shownMaps[map.step] = seen;
      var panel = mapPanel(map, stepTitle(map.step));
      if (old) {
        old.querySelectorAll("details[open]").forEach(function (open) {
          var same = panel.querySelector("details." + open.className);
          if (same) {
            same.open = true;
          }
        });
        section.replaceChild(panel, old);
      } else {
        section.appendChild(panel);
      }
    });
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
        showMaps(run.maps);
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
