// synthtasks review app: the small amount of behaviour the server-rendered pages need.
// Loaded as a file (the Content-Security-Policy forbids inline scripts). Everything a
// model wrote is inserted with textContent, never as HTML.
"use strict";

const LIVE_TEXTS_SHOWN = 200;

const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;

// Same grammar as the workers: {name} is a variable, {{ and }} are literal braces.
function promptVariables(text) {
  const names = [];
  const pattern = /\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
  let match;
  while ((match = pattern.exec(text)) !== null) {
    if (match[1] && !names.includes(match[1])) names.push(match[1]);
  }
  return names;
}

function setUpGenerateForm() {
  const form = document.getElementById("generate-form");
  if (!form) return;
  const prompt = form.querySelector("#prompt");
  const system = form.querySelector("#system_prompt");
  const box = document.getElementById("variables");
  const template = document.getElementById("variable-template");
  const sync = () => {
    const wanted = promptVariables(prompt.value + "\n" + system.value);
    for (const row of [...box.querySelectorAll(".variable")]) {
      if (!wanted.includes(row.dataset.variable)) row.remove();
    }
    for (const name of wanted) {
      if (box.querySelector(`.variable[data-variable="${CSS.escape(name)}"]`)) continue;
      const row = template.content.firstElementChild.cloneNode(true);
      row.dataset.variable = name;
      row.querySelector('input[name="variable_name"]').value = name;
      row.querySelector(".variable-label").textContent = `Values of {${name}}`;
      box.appendChild(row);
    }
  };
  prompt.addEventListener("input", sync);
  system.addEventListener("input", sync);
  sync();
  const slider = form.querySelector("#temperature");
  const shown = document.getElementById("temperature-value");
  slider.addEventListener("input", () => { shown.textContent = slider.value; });
}

// The generate page's project choice: picking from the list switches at once (the
// providers differ per project); a typed project id is sent with the Switch button.
function setUpProjectSwitch() {
  const choice = document.querySelector("#project-switch select");
  if (!choice) return;
  choice.addEventListener("change", () => choice.form.requestSubmit());
}

function setUpLiveJob() {
  const live = document.getElementById("job-live");
  if (!live || live.dataset.finished === "true") return;
  const list = document.getElementById("live-texts");
  const events = new EventSource(live.dataset.events);
  const show = (summary) => {
    for (const element of document.querySelectorAll("[data-count]")) {
      const key = element.dataset.count;
      if (key in summary) element.textContent = summary[key];
    }
  };
  events.addEventListener("job", (event) => {
    const summary = JSON.parse(event.data);
    show(summary);
    if (summary.finished) {
      const cancel = document.getElementById("cancel-form");
      if (cancel) cancel.remove();
    }
  });
  events.addEventListener("text", (event) => {
    const text = JSON.parse(event.data);
    if (list.querySelector(`li[data-name="${CSS.escape(text.id)}"]`)) return;
    const item = document.createElement("li");
    item.dataset.name = text.id;
    const body = document.createElement("p");
    body.className = "text";
    body.textContent = text.text;
    item.appendChild(body);
    for (const tag of text.tags) {
      const chip = document.createElement("span");
      chip.className = "tag";
      chip.textContent = tag;
      item.appendChild(chip);
    }
    list.prepend(item);
    // A job may make thousands of texts: the page keeps the newest ones (Review has all).
    while (list.children.length > LIVE_TEXTS_SHOWN) list.lastElementChild.remove();
  });
  events.addEventListener("end", () => { events.close(); live.dataset.finished = "true"; });
  events.addEventListener("failure", (event) => {
    events.close();
    document.querySelector('[data-count="error"]').textContent = JSON.parse(event.data).message;
  });
}

function setUpProviderForm() {
  const form = document.getElementById("provider-form");
  if (!form) return;
  const button = document.getElementById("validate-button");
  const output = document.getElementById("validation-result");
  button.addEventListener("click", async () => {
    output.textContent = "Checking…";
    output.className = "";
    for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
    let reply;
    try {
      const response = await fetch(form.dataset.testUrl, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRF-Token": csrfToken() },
        credentials: "same-origin",
      });
      reply = await response.json();
    } catch (error) {
      output.textContent = "The check could not be made (the server did not answer).";
      output.className = "error";
      return;
    }
    for (const [field, message] of Object.entries(reply.errors || {})) {
      const slot = document.getElementById(`error-${field}`);
      if (slot) slot.textContent = message;
    }
    if (reply.state) {
      const latency = reply.latency_ms ? ` (${reply.latency_ms} ms)` : "";
      output.textContent = `${reply.state}${latency}${reply.message ? ": " + reply.message : ""}`;
      output.className = reply.valid ? "ok" : "error";
    } else {
      output.textContent = reply.message || "The credentials could not be checked.";
      output.className = "error";
    }
  });
}

function setUpReview() {
  const list = document.getElementById("texts");
  if (!list) return;
  const rows = () => [...list.querySelectorAll("li.row")];
  const selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("change", () => {
      for (const box of list.querySelectorAll("input.select")) box.checked = selectAll.checked;
    });
  }
  const current = () => document.activeElement.closest && document.activeElement.closest("li.row");
  const move = (step) => {
    const all = rows();
    if (!all.length) return;
    const index = all.indexOf(current());
    const next = all[Math.max(0, Math.min(all.length - 1, index + step))] || all[0];
    next.focus();
  };
  const press = (row, action) => {
    const button = row && row.querySelector(`button[data-action="${action}"]`);
    if (button) button.click();
  };
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName);
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    const row = current();
    switch (event.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "x": if (row) { const box = row.querySelector("input.select"); box.checked = !box.checked; } break;
      case "e": {
        const edit = row && row.querySelector("details.edit");
        if (edit) { edit.open = true; edit.querySelector("textarea").focus(); }
        break;
      }
      case "t": { const input = row && row.querySelector(".tag-input"); if (input) input.focus(); break; }
      case "d": press(row, "discard"); break;
      case "r": press(row, "restore"); break;
      case "i": press(row, "import"); break;
      default: return;
    }
    event.preventDefault();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpGenerateForm();
  setUpProjectSwitch();
  setUpLiveJob();
  setUpProviderForm();
  setUpReview();
});
