// /docs: start Swagger UI (served by the app; the CSP refuses inline scripts and CDNs).
// "Try it out" sends the session's CSRF token, as every page's own requests do.
"use strict";
(function () {
  const root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") { return; }
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  window.SwaggerUIBundle({
    url: root.dataset.openapi,
    domNode: root,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    requestInterceptor: (req) => {
      if (csrf) { req.headers["X-CSRF-Token"] = csrf; }
      return req;
    },
  });
})();
