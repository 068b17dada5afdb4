/* The review desk (templates/admin/campaigns/generatedemail/desk.html): one draft at a time, decided at the
   keyboard. The queue is the ids the filters select; the cards of the next few are fetched ahead, so after a
   decision the next draft is on screen at once, while the decision is posted in the background. A decision the
   server refuses (someone else decided first, a rule it breaks) is shown, and that draft is read again. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("desk-config").textContent);
  var root = document.getElementById("desk");
  var $ = function (selector) { return root.querySelector(selector); };
  var AHEAD = 4;      // cards fetched ahead of the one shown
  var POLL_MS = 1500; // how often drafts being rewritten are read again

  var ids = [];
  var position = 0;
  var cards = new Map();    // id -> card
  var asked = new Map();    // id -> promise of its card
  var rewriting = new Set();
  var view = "html";
  var mode = null;          // null, "reject", "edit", "regenerate", "bulk"
  var bulkState = null;     // while a bulk decision waits for its confirmation: {action, count, token, reasons}
  var decided = 0;
  window.deskTimings = [];  // ms from a decision (or next/previous) to the next draft on screen: bench/review.py

  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data.error || ("HTTP " + r.status)); }
        return data;
      });
    });
  }

  // A JSON POST with the session's CSRF token; resolves to {ok, status, data} whatever the status, so each caller
  // says what a refusal means for it.
  function postJSON(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrf()},
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) { return {ok: r.ok, status: r.status, data: data}; });
    });
  }

  function decideURL(id) { return config.decide.replace("/0/", "/" + id + "/"); }

  function fetchCards(wanted) {
    var missing = wanted.filter(function (id) { return !cards.has(id) && !asked.has(id); });
    if (!missing.length) { return Promise.all(wanted.map(function (id) { return asked.get(id) || Promise.resolve(); })); }
    var request = getJSON(config.cards + "?ids=" + missing.join(",")).then(function (data) {
      data.cards.forEach(function (card) { cards.set(card.id, card); });
      missing.forEach(function (id) { asked.delete(id); });
      // Gone since the queue was read (deleted, or moved out of reach): out of the queue, and the draft on
      // screen stays the one on screen.
      data.missing.forEach(function (id) {
        var at = ids.indexOf(id);
        if (at < 0) { return; }
        ids.splice(at, 1);
        if (at < position) { position -= 1; }
      });
      return true;
    }, function (error) {
      missing.forEach(function (id) { asked.delete(id); });
      say("Could not read the drafts: " + error.message + ". Press j to try again.");
      return false;
    });
    missing.forEach(function (id) { asked.set(id, request); });
    return request;
  }

  function prefetch() {
    fetchCards(ids.slice(position, position + AHEAD + 1));
  }

  function text(el, value) { el.textContent = value === null || value === undefined || value === "" ? "–" : value; }

  function field(card, path) {
    return path.split(".").reduce(function (value, key) { return value === null || value === undefined ? value : value[key]; }, card);
  }

  function list(el, rows, build) {
    el.replaceChildren();
    rows.forEach(function (row) { el.appendChild(build(row)); });
    if (!rows.length) { var li = document.createElement("li"); li.className = "quiet"; li.textContent = "none"; el.appendChild(li); }
  }

  function li(textContent, className) {
    var item = document.createElement("li");
    item.textContent = textContent;
    if (className) { item.className = className; }
    return item;
  }

  function render(started) {
    $("#desk-position").textContent = ids.length
      ? "Draft " + Math.min(position + 1, ids.length) + " of " + ids.length + " · " + decided + " decided here" + (rewriting.size ? " · " + rewriting.size + " being rewritten" : "")
      : "";
    if (position >= ids.length) {
      root.dataset.state = "empty";
      $("#desk-card").hidden = true;
      $("#desk-empty").hidden = false;
      root.dataset.emailId = "";
      return;
    }
    var id = ids[position];
    var card = cards.get(id);
    if (!card) {
      root.dataset.state = "loading";
      fetchCards(ids.slice(position, position + AHEAD + 1)).then(function (read) {
        // Drawn again once read; also when this draft turned out to be gone (the next one is in its place).
        // Not after a failed read: that waits for a key, rather than asking the server again and again.
        if (read !== false && (ids[position] === id || ids.indexOf(id) < 0)) { render(started); }
      });
      return;
    }
    $("#desk-empty").hidden = true;
    $("#desk-card").hidden = false;
    root.querySelectorAll("[data-f]").forEach(function (el) { text(el, field(card, el.dataset.f)); });
    var pill = $(".pill");
    pill.dataset.status = card.status;
    $(".desk-rewriting").hidden = card.status !== "regenerating";
    $("#desk-html").srcdoc = card.html ? card.html.replace("<head>", '<head><base target="_blank">') : "<p style='font-family:sans-serif;color:#777'>No email was written: " + escapeHTML(card.failure_reason || "") + "</p>";
    $("#desk-text").textContent = card.text || card.failure_reason || "";
    $("#desk-prompt").textContent = card.prompt || "(no prompt)";
    renderDiff(card);
    renderJudge(card.judge);
    renderSubjects(card);
    $("[data-view=diff]").hidden = !card.edited;
    list($("#desk-recent"), card.contact.recent, function (row) { return li(row.title + " · " + row.event + " " + row.at); });
    list($("#desk-picks"), card.picks, function (pick) {
      var item = document.createElement("li");
      var title = document.createElement("strong");
      title.textContent = pick.title + (pick.year ? " (" + pick.year + ")" : "");
      item.appendChild(title);
      if (pick.genres && pick.genres.length) {
        var genres = document.createElement("span");
        genres.className = "genres";
        pick.genres.forEach(function (genre) { var chip = document.createElement("span"); chip.className = "chip"; chip.textContent = genre; genres.appendChild(chip); });
        item.appendChild(genres);
      }
      if (pick.plot) { var plot = document.createElement("p"); plot.className = "plot"; plot.textContent = pick.plot; item.appendChild(plot); }
      var why = document.createElement("p");
      why.className = "why";
      why.textContent = pick.missing ? "no longer in the catalog" : "Why: " + pick.why.join("; ");
      item.appendChild(why);
      return item;
    });
    var checks = [];
    if (card.status === "failed") { checks.push({t: "✗ not written: " + (card.failure_reason || "failed"), c: "bad"}); }
    else if (card.status !== "regenerating") {
      checks.push({t: "✓ passed validation" + (card.checks.attempts > 1 ? " on attempt " + card.checks.attempts : " first time"), c: "good"});
    }
    card.checks.refused.forEach(function (row) { checks.push({t: "attempt " + row.attempt + " refused: " + row.problem, c: "warn"}); });
    checks.push({t: card.checks.guardrail, c: card.checks.screened ? "good" : "quiet"});
    if (card.feedback) { checks.push({t: "rewritten with your feedback: “" + card.feedback + "”", c: "quiet"}); }
    if (card.reject_reason) { checks.push({t: "rejected: " + card.reject_reason, c: "bad"}); }
    var sendingRows = [];  // the send's state: why it failed or waits, and from when it may go
    if (card.send_error) { sendingRows.push({t: card.status_label + ": " + card.send_error, c: card.status === "approved" ? "warn" : "bad"}); }
    if (card.send_after && card.status === "approved") { sendingRows.push({t: "asked to be sent from " + new Date(card.send_after).toLocaleString(), c: "quiet"}); }
    $("#desk-sending-section").hidden = !sendingRows.length;
    list($("#desk-sending"), sendingRows, function (row) { return li(row.t, row.c); });
    list($("#desk-checks"), checks, function (row) { return li(row.t, row.c); });
    list($("#desk-events"), card.events, function (row) {
      var detail = row.detail && (row.detail.reason || row.detail.feedback);
      return li(row.kind + (row.actor ? " by " + row.actor : "") + " · " + row.at.slice(0, 16).replace("T", " ") + (detail ? " — " + detail : ""));
    });
    show(view === "diff" && !card.edited ? "html" : view);  // no changes to show: the email, not an empty pane
    root.dataset.state = "ready";
    root.dataset.emailId = String(id);
    root.dataset.status = card.status;
    if (started !== undefined) {
      var elapsed = performance.now() - started;
      requestAnimationFrame(function () { window.deskTimings.push(elapsed); });
    }
    prefetch();
  }

  // The draft judge's verdict: one calm line, its reasons as short badges (the full sentence on hover).
  var JUDGE_LABELS = {missing_pick: "missing pick", extra_title: "extra title", invented_price: "invented price",
    invented_date: "invented date", invented_person: "invented person", repeated_sentence: "repeats itself",
    repeated_closing: "same closing line", judge_unreadable: "judge unreadable", judge_failed: "judge failed",
    judge_blocked: "judge blocked", tone_goal: "tone or goal", tone_note: "tone note"};
  function renderJudge(verdict) {
    var box = $("#desk-judge");
    box.textContent = "";
    box.hidden = !verdict;
    if (!verdict) { return; }
    box.dataset.level = verdict.needs_person ? "person" : "fine";
    var head = document.createElement("span");
    head.className = "desk-judge-head";
    head.textContent = (verdict.needs_person ? "Needs a person" : "Looks fine") + " · risk " + verdict.risk.toFixed(2);
    box.appendChild(head);
    verdict.reasons.forEach(function (reason) {
      if (reason.code === "tone_note") { head.title = reason.message; return; }  // the model found nothing: no badge
      var row = document.createElement("span");
      row.className = "judge-why";
      var badge = document.createElement("span");
      badge.className = "judge-badge";
      badge.dataset.code = reason.code;
      badge.textContent = JUDGE_LABELS[reason.code] || reason.code;
      row.appendChild(badge);
      row.appendChild(document.createTextNode(" " + reason.message));
      box.appendChild(row);
    });
  }

  // The subject variants written for a draft: the one in use marked; in a "pick" campaign the reviewer clicks
  // another (or presses v for the next), a recorded change that leaves the draft a draft and the desk on it.
  function renderSubjects(card) {
    var box = $("#desk-subjects");
    box.replaceChildren();
    var candidates = card.subject_candidates || [];
    box.hidden = candidates.length < 2;
    if (box.hidden) { return; }
    var head = document.createElement("span");
    head.className = "desk-subjects-head";
    head.textContent = card.subject_pickable ? "Subject variants (v: next)" : "Subject variants";
    box.appendChild(head);
    candidates.forEach(function (subject, index) {
      var choice = document.createElement("button");
      choice.type = "button";
      choice.className = "desk-subject-choice";
      choice.dataset.variant = index;
      choice.setAttribute("aria-pressed", index === card.subject_variant ? "true" : "false");
      choice.disabled = !card.subject_pickable || !card.can_review;
      choice.textContent = String.fromCharCode(65 + index) + " · " + subject;
      choice.addEventListener("click", function () { pickSubject(index); });
      box.appendChild(choice);
    });
  }

  function pickSubject(index) {
    var id = ids[position];
    var card = cards.get(id);
    if (!card || !card.subject_pickable || index === card.subject_variant) { return; }
    if (!card.can_review) { say("Your role in " + card.tenant + " does not review emails."); return; }
    postJSON(decideURL(id), {action: "subject", variant: index}).then(function (answer) {
      if (answer.data.card) { cards.set(id, answer.data.card); }
      if (ids[position] === id) { render(); }
      say(answer.ok ? "Subject " + String.fromCharCode(65 + index) + " picked for draft #" + id + "."
                    : "Subject not changed: " + answer.data.error);
    }).catch(function (error) { say("Subject not changed: " + error.message); });
  }

  function escapeHTML(value) {
    var div = document.createElement("div");
    div.textContent = value;
    return div.innerHTML;
  }

  function renderDiff(card) {
    var box = $("#desk-diff");
    box.replaceChildren();
    if (!card.edited) { return; }
    [["Subject", card.subject_diff], ["Body", card.diff]].forEach(function (part) {
      var heading = document.createElement("h4");
      heading.textContent = part[0] + (part[1].length ? " (the model's text struck through, yours underlined)" : ": unchanged");
      box.appendChild(heading);
      var para = document.createElement("p");
      part[1].forEach(function (run) {
        var el = document.createElement(run[0] === "-" ? "del" : run[0] === "+" ? "ins" : "span");
        el.textContent = run[1];
        para.appendChild(el);
      });
      box.appendChild(para);
    });
  }

  function show(which) {
    view = which;
    var panes = {html: "#desk-html", text: "#desk-text", diff: "#desk-diff", prompt: "#desk-prompt"};
    Object.keys(panes).forEach(function (key) { $(panes[key]).hidden = key !== which; });
    root.querySelectorAll("[data-bulk]").forEach(function (button) {
    button.addEventListener("click", function () { bulkAsk(button.dataset.bulk); });
  });

  root.querySelectorAll("[data-view]").forEach(function (tab) { tab.setAttribute("aria-selected", String(tab.dataset.view === which)); });
  }

  function say(message) {
    var note = $("#desk-message");
    note.textContent = message || "";
    note.hidden = !message;
  }

  function move(step) {
    var started = performance.now();
    closePanels();
    say("");
    position = Math.max(0, Math.min(ids.length, position + step));
    render(started);
  }

  function decide(decision) {
    var id = ids[position];
    var card = cards.get(id);
    if (!card) { return; }
    if (!card.can_review) { say("Your role in " + card.tenant + " does not review emails."); return; }
    var started = performance.now();
    closePanels();
    say("");
    decided += 1;
    post(id, decision);
    position = Math.min(ids.length, position + 1);
    render(started);
  }

  // A test send: the open draft to the reviewer's own address; the desk stays on it, and nothing about it changes.
  function testSend() {
    var id = ids[position];
    var card = cards.get(id);
    if (!card) { return; }
    if (!card.can_review) { say("Your role in " + card.tenant + " does not review emails."); return; }
    say("Sending a test of draft #" + id + " to you…");
    postJSON(decideURL(id), {action: "test"}).then(function (answer) {
      if (answer.data.card) { cards.set(id, answer.data.card); }
      if (ids[position] === id) { render(); }
      say(answer.ok ? "Test of draft #" + id + " sent to " + answer.data.sent_to + "; the draft is unchanged."
                    : "No test sent: " + answer.data.error);
    }).catch(function (error) { say("No test sent: " + error.message); });
  }

  var inflight = new Set();  // decisions posted and not yet answered
  function post(id, decision) {
    var sent = postJSON(decideURL(id), decision).then(function (answer) {
      if (answer.data.card) { cards.set(id, answer.data.card); }
      if (!answer.ok) {
        decided -= 1;
        say("Draft #" + id + " was not " + decision.action + "d: " + answer.data.error + " (press k to go back to it)");
      } else if (answer.data.card.status === "regenerating") {
        rewriting.add(id);
        watch();
      }
      if (ids[position] === id) { render(); } else { renderPosition(); }
    }).catch(function (error) {
      decided -= 1;
      say("Draft #" + id + ": the decision did not reach the server (" + error.message + "). Press k to go back and try again.");
    }).then(function () { inflight.delete(sent); });
    inflight.add(sent);
  }

  function renderPosition() {
    $("#desk-position").textContent = "Draft " + Math.min(position + 1, ids.length) + " of " + ids.length + " · " + decided + " decided here" + (rewriting.size ? " · " + rewriting.size + " being rewritten" : "");
  }

  var watching = null;
  function watch() {
    if (watching) { return; }
    watching = setInterval(function () {
      if (!rewriting.size) { clearInterval(watching); watching = null; return; }
      getJSON(config.cards + "?ids=" + Array.from(rewriting).join(",")).then(function (data) {
        data.cards.forEach(function (card) {
          cards.set(card.id, card);
          if (card.status !== "regenerating") {
            rewriting.delete(card.id);
            say("Draft #" + card.id + " has been rewritten and is " + card.status_label.toLowerCase() + ": press b to open it.");
            lastRewritten = card.id;
            if (ids[position] === card.id) { render(); }
          }
        });
        renderPosition();
      }).catch(function () { /* read again at the next tick */ });
    }, POLL_MS);
  }
  var lastRewritten = null;

  // Bulk: every draft the filters select, after a confirmation that says how many. The count comes with a token
  // naming that exact set; if the set changes before Enter (someone decided one), the server says so and the
  // question is asked again with the new count.
  function bulkURL() { return config.bulk + (config.query ? "?" + config.query : ""); }

  function bulkAsk(action) {
    closePanels();
    say("");
    bulkDone("");
    // The decisions this page has posted land first, or the count would include drafts decided a moment ago.
    Promise.all(Array.from(inflight)).then(function () { return getJSON(bulkURL()); }).then(function (counted) {
      if (!counted.count) { bulkDone("No drafts in this view to " + action + "."); return; }
      bulkShow(action, counted, "");
    }, function (error) { bulkDone("Could not count the drafts in this view: " + error.message); });
  }

  function plural(n, word) { return n.toLocaleString() + " " + word + (n === 1 ? "" : "s"); }

  function bulkShow(action, counted, note) {
    closePanels();
    mode = "bulk";
    bulkState = {action: action, count: counted.count, token: counted.token, reasons: counted.reject_reasons};
    var form = $("#desk-bulk");
    var question = (note ? note + " " : "") + (action === "approve" ? "Approve" : "Reject") + " all " +
      plural(counted.count, "draft") + " in this view?";
    if (action === "reject") { question += " Press the number of a reason, or type one and Enter."; }
    if (counted.not_reviewed) { question += " (" + plural(counted.not_reviewed, "draft") + " in tenants where your role does not review are left alone.)"; }
    form.querySelector(".desk-bulk-question").textContent = question;
    form.dataset.action = action;
    form.querySelector(".desk-bulk-reason").hidden = action !== "reject";
    listReasons($("#desk-bulk-reasons"), counted.reject_reasons);
    form.reason.value = "";
    form.hidden = false;
    if (action === "reject") { form.reason.focus(); }
  }

  function bulkDone(message) {
    var note = $("#desk-bulk-done");
    note.textContent = message;
    note.hidden = !message;
  }

  function bulkSend(reason) {
    var state = bulkState;
    var form = $("#desk-bulk");
    form.querySelector(".desk-bulk-question").textContent = (state.action === "approve" ? "Approving " : "Rejecting ") + plural(state.count, "draft") + "…";
    mode = "sending";
    postJSON(bulkURL(), {action: state.action, token: state.token, reason: reason}).then(function (answer) {
      if (answer.status === 409 && answer.data.count) {
        bulkShow(state.action, answer.data, "The drafts in this view changed meanwhile.");
        return;
      }
      closePanels();
      if (answer.status !== 200) { bulkDone("Nothing was " + state.action + "d: " + answer.data.error); return; }
      decided += answer.data.changed;
      bulkDone((state.action === "approve" ? "Approved " : "Rejected ") + plural(answer.data.changed, "draft") +
        (reason ? " (" + reason + ")" : "") + (answer.data.skipped ? "; " + answer.data.skipped + " had been decided meanwhile" : "") + ".");
      reload();
    }).catch(function (error) {
      closePanels();
      bulkDone("The bulk decision did not reach the server (" + error.message + "). Press Shift+" + state.action[0].toUpperCase() + " to count again.");
    });
  }

  function reload() {
    cards.clear();
    return getJSON(config.queue + (config.query ? "?" + config.query : "")).then(function (data) {
      ids = data.ids;
      position = 0;
      render();
    }, function (error) { say("Could not read the queue: " + error.message); });
  }

  function closePanels() {
    mode = null;
    bulkState = null;
    $("#desk-bulk").hidden = true;
    ["#desk-edit", "#desk-reject", "#desk-regenerate"].forEach(function (selector) { $(selector).hidden = true; });
    if (document.activeElement && document.activeElement !== document.body) { document.activeElement.blur(); }
  }

  // The tenant's reasons, each with the number key that picks it.
  function listReasons(list, reasons) {
    list.replaceChildren();
    reasons.forEach(function (reason, index) {
      var item = li("");
      var key = document.createElement("kbd");
      key.textContent = String(index + 1);
      item.appendChild(key);
      item.appendChild(document.createTextNode(" " + reason));
      list.appendChild(item);
    });
  }

  function open(which) {
    var card = cards.get(ids[position]);
    if (!card) { return; }
    closePanels();
    mode = which;
    if (which === "reject") {
      listReasons($("#desk-reasons"), card.reject_reasons);
      var form = $("#desk-reject");
      form.hidden = false;
      form.reason.value = "";
      form.reason.focus();
    } else if (which === "edit") {
      var edit = $("#desk-edit");
      edit.subject.value = card.subject;
      edit.body.value = card.body;
      edit.hidden = false;
      edit.body.focus();
    } else if (which === "regenerate") {
      var box = $("#desk-exclude");
      box.replaceChildren();
      card.picks.forEach(function (pick) {
        var label = document.createElement("label");
        var input = document.createElement("input");
        input.type = "checkbox";
        input.value = pick.id;
        label.appendChild(input);
        label.appendChild(document.createTextNode(" " + pick.title));
        box.appendChild(label);
      });
      var regenerate = $("#desk-regenerate");
      regenerate.hidden = false;
      regenerate.feedback.value = "";
      regenerate.feedback.focus();
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.target.closest && event.target.closest("#desk-filters")) { return; }
    if (event.key === "Escape" && mode) { event.preventDefault(); closePanels(); return; }
    if (mode === "sending") { event.preventDefault(); return; }
    if (mode === "bulk") {
      var bulkForm = $("#desk-bulk");
      var bulkReasons = bulkState.reasons;
      if (bulkState.action === "reject" && /^[1-9]$/.test(event.key) && bulkForm.reason.value === "" && Number(event.key) <= bulkReasons.length) {
        event.preventDefault();
        bulkSend(bulkReasons[Number(event.key) - 1]);
      } else if (event.key === "Enter") {
        event.preventDefault();
        if (bulkState.action === "approve") { bulkSend(""); }
        else if (bulkForm.reason.value.trim()) { bulkSend(bulkForm.reason.value.trim()); }
        else { bulkForm.querySelector(".desk-bulk-question").textContent = "A rejection needs a reason: press its number, or type one and Enter."; }
      }
      return;
    }
    if (mode === "reject") {
      var form = $("#desk-reject");
      var reasons = cards.get(ids[position]).reject_reasons;
      if (/^[1-9]$/.test(event.key) && form.reason.value === "" && Number(event.key) <= reasons.length) {
        event.preventDefault();
        decide({action: "reject", reason: reasons[Number(event.key) - 1]});
      } else if (event.key === "Enter") {
        event.preventDefault();
        if (form.reason.value.trim()) { decide({action: "reject", reason: form.reason.value}); }
        else { say("Type a reason, or press the number of one of the tenant's reasons."); }
      }
      return;
    }
    if (mode === "edit") {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        var edit = $("#desk-edit");
        decide({action: "edit", subject: edit.subject.value, body: edit.body.value});
      }
      return;
    }
    if (mode === "regenerate") {
      if (event.key === "Enter" && event.target.type !== "checkbox") {
        event.preventDefault();
        var regenerate = $("#desk-regenerate");
        var exclude = Array.from(regenerate.querySelectorAll("input[type=checkbox]:checked")).map(function (box) { return box.value; });
        decide({action: "regenerate", feedback: regenerate.feedback.value, exclude: exclude});
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var actions = {
      a: function () { decide({action: "approve"}); },
      A: function () { bulkAsk("approve"); },
      R: function () { bulkAsk("reject"); },
      r: function () { open("reject"); },
      e: function () { open("edit"); },
      g: function () { open("regenerate"); },
      s: testSend,
      v: function () {
        var card = cards.get(ids[position]);
        if (card && card.subject_pickable) { pickSubject((card.subject_variant + 1) % card.subject_candidates.length); }
      },
      j: function () { move(1); }, ArrowRight: function () { move(1); },
      k: function () { move(-1); }, ArrowLeft: function () { move(-1); },
      t: function () { show(view === "text" ? "html" : "text"); },
      p: function () { show(view === "prompt" ? "html" : "prompt"); },
      d: function () { var card = cards.get(ids[position]); if (card && card.edited) { show(view === "diff" ? "html" : "diff"); } },
      b: function () {
        var at = ids.indexOf(lastRewritten);
        if (at >= 0) { var started = performance.now(); closePanels(); position = at; render(started); }
      }
    };
    if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
  });

  // Enter in a panel's only text field would submit its form, reloading the desk with the email in the URL.
  ["#desk-edit", "#desk-reject", "#desk-regenerate", "#desk-bulk"].forEach(function (selector) {
    $(selector).addEventListener("submit", function (event) { event.preventDefault(); });
  });

  root.querySelectorAll("[data-view]").forEach(function (tab) {
    tab.addEventListener("click", function () { show(tab.dataset.view); });
  });

  getJSON(config.queue + (config.query ? "?" + config.query : "")).then(function (data) {
    ids = data.ids;
    position = 0;
    render();
  }, function (error) {
    root.dataset.state = "error";
    say("Could not read the queue: " + error.message);
    $("#desk-card").hidden = false;
  });
})();
