// Case settings: the delete button waits until the case's name is typed exactly (the
// server checks it again: this only saves a round trip).
(() => {
  const input = document.getElementById("delete-confirm");
  const button = document.getElementById("delete-button");
  if (!input || !button) return;
  const check = () => { button.disabled = input.value !== input.dataset.expected; };
  input.addEventListener("input", check);
  check();
})();
