// The API explorer (Swagger UI from the pinned npm package), started from a file rather than
// an inline script so that the page's Content-Security-Policy can forbid inline scripts.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // The default would fetch a badge from validator.swagger.io: no third-party requests.
  validatorUrl: null,
  persistAuthorization: false,
});
