// Campaign editor: preview the message as the chosen contact.
document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("preview-contact");
  const frame = document.getElementById("preview-frame");
  if (!select || !frame) return;
  select.addEventListener("change", () => {
    const url = new URL(select.dataset.previewUrl, window.location.href);
    if (select.value) url.searchParams.set("contact", select.value);
    frame.src = url.toString();
  });
});
