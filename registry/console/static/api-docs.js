// Starts Swagger UI or ReDoc on the console's API page (an external file: the CSP allows no
// inline script). The document comes from the signed-in session.
window.addEventListener("DOMContentLoaded", function () {
  var swagger = document.getElementById("swagger-ui");
  if (swagger && window.SwaggerUIBundle) {
    window.SwaggerUIBundle({ url: swagger.getAttribute("data-spec"), domNode: swagger });
  }
  var redoc = document.getElementById("redoc");
  if (redoc && window.Redoc) {
    window.Redoc.init(redoc.getAttribute("data-spec"), {}, redoc);
  }
});
