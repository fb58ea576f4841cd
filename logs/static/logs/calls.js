/* Usage Logs: the call detail page's small helpers. No dependencies, no build step.
 *
 * - Copy buttons (data-copy-from="ID"): copy that element's text with the
 *   Clipboard API, or a hidden textarea where it is missing; say so in the
 *   live region next to the button.
 * - JSON highlighting (pre[data-json]): split the text into spans for keys,
 *   strings, numbers and true/false/null. Only text nodes are created, so the
 *   payload is never parsed as HTML.
 * - Scrollable payloads get a tab stop and a name, so keyboard users can scroll them.
 */
(function () {
  "use strict";

  // --- copy -------------------------------------------------------------------

  function copyWithTextarea(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.top = "-1000px";
    document.body.appendChild(area);
    area.select();
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    document.body.removeChild(area);
    return copied;
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(
        function () { return true; },
        function () { return copyWithTextarea(text); }
      );
    }
    return Promise.resolve(copyWithTextarea(text));
  }

  function selectContents(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  // The live region the list's copy buttons share (one, not one per row).
  function listStatus() {
    var status = document.getElementById("copy-id-status");
    if (!status) {
      status = document.createElement("span");
      status.id = "copy-id-status";
      status.className = "copy-status visually-hidden";
      status.setAttribute("role", "status");
      status.setAttribute("aria-live", "polite");
      document.body.appendChild(status);
    }
    return status;
  }

  function setUpCopyButton(button) {
    var fixedText = button.dataset.copyText;
    var source = fixedText === undefined ? document.getElementById(button.dataset.copyFrom) : null;
    if (fixedText === undefined && !source) {
      return;
    }
    var status = fixedText === undefined ? button.parentNode.querySelector(".copy-status") : listStatus();
    var label = button.textContent;
    var timer = null;
    button.hidden = false;
    button.addEventListener("click", function () {
      copyText(fixedText === undefined ? source.textContent.trim() : fixedText).then(function (copied) {
        if (!copied && source) {
          selectContents(source);
        }
        var message = copied
          ? "Copied" + (fixedText === undefined ? "" : " " + fixedText)
          : source ? "Selected: press Ctrl+C (⌘C) to copy" : "Could not copy " + fixedText;
        button.textContent = copied ? "Copied ✓" : label;
        button.classList.toggle("copied", copied);
        if (status) {
          // Said to screen readers either way; shown only when the button's
          // own "Copied ✓" cannot say it.
          status.textContent = message;
          status.classList.toggle("visually-hidden", copied);
        }
        window.clearTimeout(timer);
        timer = window.setTimeout(function () {
          button.textContent = label;
          button.classList.remove("copied");
          if (status) {
            status.textContent = "";
          }
        }, 4000);
      });
    });
  }

  // --- JSON highlighting ------------------------------------------------------

  // A string (with a colon after it when it is a key), a literal, or a number.
  // A string cut short (a folded preview's long line) runs to the end of its line.
  var TOKEN = /("(?:[^"\\\n]|\\.)*(?:"|$))(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/gm;

  function span(className, text) {
    var element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function highlightJson(pre) {
    var text = pre.textContent;
    var fragment = document.createDocumentFragment();
    var last = 0;
    var match;
    TOKEN.lastIndex = 0;
    while ((match = TOKEN.exec(text)) !== null) {
      if (match.index > last) {
        fragment.appendChild(document.createTextNode(text.slice(last, match.index)));
      }
      if (match[1] !== undefined && match[2] !== undefined) {
        fragment.appendChild(span("json-key", match[1]));
        fragment.appendChild(document.createTextNode(match[2]));
      } else if (match[1] !== undefined) {
        fragment.appendChild(span("json-string", match[1]));
      } else if (match[3] !== undefined) {
        fragment.appendChild(span("json-literal", match[3]));
      } else {
        fragment.appendChild(span("json-number", match[4]));
      }
      last = TOKEN.lastIndex;
    }
    if (last < text.length) {
      fragment.appendChild(document.createTextNode(text.slice(last)));
    }
    pre.textContent = "";
    pre.appendChild(fragment);
    pre.classList.add("json-highlighted");
  }

  // --- scrollable payloads ----------------------------------------------------

  function makeFocusableIfScrollable(pre) {
    if (pre.scrollHeight > pre.clientHeight + 1 || pre.scrollWidth > pre.clientWidth + 1) {
      pre.tabIndex = 0;
      pre.setAttribute("role", "region");
      pre.setAttribute("aria-label", (pre.dataset.title || "Payload") + " (scrollable)");
    }
  }

  // --- a time range typed but not applied (call list) --------------------------

  // Typed start and end are applied, not dropped, when the person leaves by
  // another filter's link; until then a note says they are not applied yet.
  function watchTheTimeRange() {
    var form = document.querySelector("form.time-range-filter");
    if (!form) {
      return;
    }
    var inputs = [form.elements.start, form.elements.end];
    var note = form.querySelector(".time-range-unapplied");
    function typed() {
      return inputs.some(function (input) { return input.value !== input.dataset.applied; });
    }
    inputs.forEach(function (input) {
      input.addEventListener("input", function () { note.hidden = !typed(); });
      input.addEventListener("change", function () { note.hidden = !typed(); });
    });
    document.addEventListener("click", function (event) {
      var link = event.target.closest("#changelist-filter a, .xfull a, nav.toplinks a");
      if (!link || !typed() || link.closest("form.time-range-filter") || link.dataset.preset) {
        return;
      }
      var url = new URL(link.href, window.location.href);
      if (url.pathname !== window.location.pathname) {
        return;
      }
      inputs.forEach(function (input) {
        if (input.value) {
          url.searchParams.set(input.name, input.value);
        } else {
          url.searchParams.delete(input.name);
        }
      });
      url.searchParams.delete("last");
      event.preventDefault();
      window.location.assign(url.toString());
    });
  }

  // --- filters behind a button (call list, where the table needs the width) ----

  function foldTheFilters() {
    var changelist = document.getElementById("changelist");
    var filters = document.getElementById("changelist-filter");
    if (!changelist || !filters) {
      return;
    }
    var active = 0;
    new URLSearchParams(window.location.search).forEach(function (value, name) {
      if (value && ["p", "o", "q", "_changelist_filters"].indexOf(name) < 0) {
        active += 1;
      }
    });
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button filters-toggle";
    button.setAttribute("aria-controls", "changelist-filter");
    button.setAttribute("aria-expanded", "false");
    button.textContent = active ? "Filters (" + active + " active)" : "Filters";
    changelist.insertBefore(button, changelist.firstChild);
    changelist.classList.add("filters-collapsible");
    function show(open) {
      changelist.classList.toggle("filters-open", open);
      button.setAttribute("aria-expanded", open ? "true" : "false");
      try {
        // Open stays open on the next page (a filter's link reloads it).
        window.sessionStorage.setItem("calls.filtersOpen", open ? "1" : "0");
      } catch (error) {
        // Storage refused (private mode): the panel starts closed each time.
      }
    }
    button.addEventListener("click", function () {
      show(!changelist.classList.contains("filters-open"));
    });
    // "Skip to filters" opens them before the browser moves there.
    document.querySelectorAll('a[href="#changelist-filter"]').forEach(function (link) {
      link.addEventListener("click", function () { show(true); });
    });
    window.addEventListener("hashchange", function () {
      if (window.location.hash === "#changelist-filter") {
        show(true);
      }
    });
    var remembered = null;
    try {
      remembered = window.sessionStorage.getItem("calls.filtersOpen");
    } catch (error) {
      remembered = null;
    }
    if (remembered === "1" || window.location.hash === "#changelist-filter") {
      show(true);
    }
  }

  // The table's header sticks under the totals bar, whatever its height.
  function measureTheTotals() {
    var bar = document.querySelector(".call-totals");
    if (!bar) {
      return;
    }
    function measure() {
      document.documentElement.style.setProperty("--call-totals-height", bar.offsetHeight + "px");
    }
    measure();
    window.addEventListener("resize", measure);
  }

  // --- live tail (call list, first page, newest first) ---------------------------

  // Opt-in: every few seconds the page is read again and its rows and totals
  // replaced; rows not shown before are marked new. Scrolling stops it (the
  // rows would move under the reader), and so does leaving the first page.
  function liveTail() {
    var box = document.querySelector(".live-tail");
    if (!box || !window.fetch || !window.DOMParser) {
      return;
    }
    box.hidden = false;
    var input = box.querySelector("input");
    var status = box.querySelector(".live-tail-status");
    var every = parseInt(input.dataset.interval, 10) || 5000;
    var timer = null;
    function shown(root) {
      var ids = {};
      root.querySelectorAll("#result_list button[data-copy-text]").forEach(function (button) {
        ids[button.dataset.copyText] = true;
      });
      return ids;
    }
    function stop(reason) {
      window.clearInterval(timer);
      timer = null;
      input.checked = false;
      status.textContent = reason;
    }
    function refresh() {
      window.fetch(window.location.href, {credentials: "same-origin"}).then(function (response) {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.text();
      }).then(function (html) {
        if (timer === null) {
          return;  // stopped while the page was on its way
        }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var before = shown(document);
        var rows = document.querySelector("#result_list tbody");
        var newRows = fresh.querySelector("#result_list tbody");
        var totals = document.querySelector(".call-totals");
        var newTotals = fresh.querySelector(".call-totals");
        if (newTotals && totals) {
          totals.replaceWith(newTotals);
        }
        if (!rows || !newRows) {
          return;
        }
        var added = 0;
        newRows.querySelectorAll("tr").forEach(function (row) {
          var button = row.querySelector("button[data-copy-text]");
          if (button && !before[button.dataset.copyText]) {
            row.classList.add("call-new");
            added += 1;
          }
        });
        rows.replaceWith(newRows);
        newRows.querySelectorAll("button[data-copy-text]").forEach(setUpCopyButton);
        var now = new Date().toLocaleTimeString();
        status.textContent = (added ? added + " new call" + (added === 1 ? "" : "s") : "No new calls")
          + " at " + now + ".";
      }).catch(function () {
        stop("Live tail stopped: the list could not be read.");
      });
    }
    input.addEventListener("change", function () {
      if (input.checked) {
        window.scrollTo(0, 0);
        status.textContent = "Live: the list is read again every " + every / 1000 + " s.";
        timer = window.setInterval(refresh, every);
      } else {
        stop("Live tail off.");
      }
    });
    window.addEventListener("scroll", function () {
      if (timer !== null && window.scrollY > 150) {
        stop("Live tail stopped because you scrolled; tick it to resume.");
      }
    }, {passive: true});
  }

  function start() {
    document.querySelectorAll("button[data-copy-from], button[data-copy-text]").forEach(setUpCopyButton);
    watchTheTimeRange();
    foldTheFilters();
    measureTheTotals();
    liveTail();
    document.querySelectorAll("pre[data-json]").forEach(highlightJson);
    document.querySelectorAll("pre[data-part]").forEach(function (pre) {
      makeFocusableIfScrollable(pre);
      var fold = pre.closest("details");
      if (fold) {
        fold.addEventListener("toggle", function () {
          if (fold.open) {
            makeFocusableIfScrollable(pre);
          }
        });
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
