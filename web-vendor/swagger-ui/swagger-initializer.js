/*
 * swagger-initializer.js — starts Swagger UI on /api/openapi.json (a file
 * of its own: the page's Content-Security-Policy allows no inline script).
 *
 * "Try it out" works with the page's session: the browser sends the
 * crmblob_session cookie on these same-origin requests, and the
 * interceptor copies the readable XSRF-TOKEN cookie into the X-XSRF-TOKEN
 * header the server requires with it — unless the request already carries
 * credentials of its own (Authorize: Basic, a ticket, a bearer token).
 */
"use strict";

function crmblobCookie(name) {
  const prefix = name + "=";
  for (const part of document.cookie.split(";")) {
    const c = part.trim();
    if (c.startsWith(prefix)) return decodeURIComponent(c.slice(prefix.length));
  }
  return null;
}

function crmblobWithSession(req) {
  const headers = req.headers || (req.headers = {});
  const xsrf = crmblobCookie("XSRF-TOKEN");
  if (xsrf && !headers.Authorization && !headers["X-XSRF-TOKEN"]) headers["X-XSRF-TOKEN"] = xsrf;
  return req;
}

window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: crmblobWithSession,
    persistAuthorization: false,
  });
});
