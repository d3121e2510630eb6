// The search page's marks bar: "select every row of this page" ticks or clears the rows'
// boxes. Without JavaScript each row is ticked by hand; nothing else depends on this.
(function () {
  "use strict";
  var all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll("#results .row-select").forEach(function (box) {
      box.checked = all.checked;
    });
  });
})();
