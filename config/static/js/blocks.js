// Block editor: a small toolbar over a text block's textarea. It writes the same tags a
// customer could type (<strong>, <em>, <a href>, lists); the server sanitizes them.
(function () {
  function edit(area, before, after, inner) {
    const start = area.selectionStart, end = area.selectionEnd;
    const chosen = area.value.slice(start, end);
    const middle = inner ? inner(chosen) : chosen;
    area.setRangeText(before + middle + after, start, end, "select");
    area.focus();
  }

  function toolbars(root) {
    root.querySelectorAll(".rich-toolbar[hidden]").forEach((bar) => { bar.hidden = false; });
  }

  document.addEventListener("DOMContentLoaded", () => toolbars(document));
  document.addEventListener("htmx:afterSettle", (event) => toolbars(event.target));

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".rich-toolbar button");
    if (!button) return;
    const area = document.getElementById(button.closest(".rich-toolbar").dataset.for);
    if (!area) return;
    if (button.dataset.wrap) {
      edit(area, `<${button.dataset.wrap}>`, `</${button.dataset.wrap}>`);
    } else if (button.dataset.link !== undefined) {
      const href = window.prompt("Link address (https://…)", "https://");
      if (href) edit(area, `<a href="${href.replace(/"/g, "&quot;")}">`, "</a>");
    } else if (button.dataset.list) {
      const tag = button.dataset.list;
      edit(area, `<${tag}>`, `</${tag}>`, (text) =>
        (text || "An item").split(/\n+/).map((line) => `<li>${line.trim()}</li>`).join(""));
    }
  });
})();
