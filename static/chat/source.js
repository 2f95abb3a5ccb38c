/* Source page: bring the cited passage into view and give it focus for keyboard users. */
(function () {
  "use strict";
  const main = document.getElementById("source");
  if (!main) return;
  const target = document.getElementById(main.dataset.highlight || "") || document.querySelector(".chunk.highlight");
  if (target) {
    target.tabIndex = -1;
    target.scrollIntoView({ block: "center" });
    target.focus({ preventScroll: true });
  }
  // "Back" returns to the conversation the reader came from when there is one.
  const back = document.getElementById("back-link");
  if (back && document.referrer) {
    try {
      const ref = new URL(document.referrer);
      if (ref.origin === location.origin && ref.pathname === back.pathname) {
        back.href = ref.pathname + ref.search;
      }
    } catch (_) {
      /* keep the plain link */
    }
  }
})();
