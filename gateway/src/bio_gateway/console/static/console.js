// The console's own script (no inline scripts: the pages' CSP allows only files from /console/static).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // "Select all" checkboxes: data-select-all="<name of the checkboxes it controls>"
  for (const all of document.querySelectorAll("input[data-select-all]")) {
    const boxes = () => all.form.querySelectorAll(`input[type=checkbox][name="${all.dataset.selectAll}"]`);
    all.addEventListener("change", () => { for (const b of boxes()) b.checked = all.checked; });
  }
  // Destructive forms ask first: <form data-confirm="question">
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  for (const input of document.querySelectorAll("input[data-select-on-focus]")) {
    input.addEventListener("focus", () => input.select());
  }
  // A busy state on the button of a long upload, so nobody sends it twice.
  for (const form of document.querySelectorAll("form[enctype='multipart/form-data']")) {
    form.addEventListener("submit", (event) => {
      if (event.defaultPrevented) return;
      const button = event.submitter || form.querySelector("button[type=submit]");
      if (button) { button.setAttribute("aria-busy", "true"); button.classList.add("busy"); }
    });
  }
});
