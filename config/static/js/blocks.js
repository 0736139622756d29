// Block editor: a text block's text is edited as it will look, in a contenteditable box
// with a toolbar (bold, italic, link, lists). What is typed there is kept in the block's
// textarea, which the form sends; the server sanitizes it as it does HTML typed by hand.
// Without this script the textarea is there, and takes the same tags. "HTML" shows the
// textarea in place of the box, for whoever wants to write the tags themselves.
(function () {
  function escaped(text) {
    const div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  // The textarea's value as the box shows it: plain text (no tag at all) makes paragraphs,
  // as the server does when it saves it.
  function shown(value) {
    if (value.includes("<")) return value;
    return value
      .split(/\n\s*\n/)
      .filter((part) => part.trim())
      .map((part) => `<p>${escaped(part.trim()).replace(/\n/g, "<br>")}</p>`)
      .join("");
  }

  function parts(bar) {
    const area = document.getElementById(bar.dataset.for);
    const box = bar.parentElement.querySelector(`.rich-editor[data-for="${bar.dataset.for}"]`);
    return { area, box };
  }

  // Browsers make <b> and <i>; the tags the server and the help speak of are kept.
  function keep(box, area) {
    area.value = box.innerHTML
      .replace(/<(\/?)b>/g, "<$1strong>")
      .replace(/<(\/?)i>/g, "<$1em>");
  }

  function start(root) {
    root.querySelectorAll(".rich-toolbar[hidden]").forEach((bar) => {
      const { area, box } = parts(bar);
      if (!area || !box) return;
      box.innerHTML = shown(area.value);
      box.addEventListener("input", () => keep(box, area));
      box.addEventListener("blur", () => keep(box, area));
      bar.hidden = false;
      box.hidden = false;
      area.hidden = true;
    });
  }

  document.addEventListener("DOMContentLoaded", () => start(document));
  document.addEventListener("htmx:afterSettle", (event) => start(event.target));

  function command(box, area, name, value) {
    box.focus();
    document.execCommand("defaultParagraphSeparator", false, "p");
    document.execCommand(name, false, value);
    keep(box, area);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".rich-toolbar button");
    if (!button) return;
    const { area, box } = parts(button.closest(".rich-toolbar"));
    if (!area || !box) return;
    if (button.dataset.code !== undefined) {
      const toCode = area.hidden;
      if (toCode) keep(box, area);
      else box.innerHTML = shown(area.value);
      area.hidden = !toCode;
      box.hidden = toCode;
      button.setAttribute("aria-pressed", String(toCode));
      (toCode ? area : box).focus();
      return;
    }
    if (box.hidden) return; // the HTML is shown: the tags are typed by hand there
    if (button.dataset.command) {
      command(box, area, button.dataset.command);
    } else if (button.dataset.link !== undefined) {
      const href = window.prompt("Link address (https://…)", "https://");
      if (href) command(box, area, "createLink", href);
    }
  });

  // What the box holds goes with the form, whichever way it is sent (htmx or not).
  document.addEventListener(
    "submit",
    (event) => {
      event.target.querySelectorAll(".rich-editor").forEach((box) => {
        const area = document.getElementById(box.dataset.for);
        if (area && !box.hidden) keep(box, area);
      });
    },
    true,
  );
})();
