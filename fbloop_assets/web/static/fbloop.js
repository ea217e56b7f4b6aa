// Keyboard shortcuts: any element with data-key="x" is chosen (radio) or pressed (button, link)
// when x is typed, unless the reviewer is typing in a text field.
document.addEventListener("keydown", function (event) {
  var target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type !== "radio"))) return;
  var key = event.key === "Escape" ? "Escape" : event.key.toLowerCase();
  var element = document.querySelector('[data-key="' + CSS.escape(key) + '"]');
  if (!element) return;
  event.preventDefault();
  if (element.type === "radio") { element.checked = true; element.focus(); } else { element.click(); }
});
