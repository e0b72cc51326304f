"""The API's description, open to all: GET /openapi.json, and Swagger UI on it at GET /docs.

Swagger UI's files come from the `swagger-ui-bundle` package and are served from here, so the
page works without internet.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template_string
from swagger_ui_bundle import swagger_ui_path

from api.errors import ApiError
from api.openapi import build_spec
from api.services import services

bp = Blueprint("docs", __name__, static_folder=str(swagger_ui_path), static_url_path="/docs/assets")

# Swagger UI 4 (the bundle's version) renders only documents that say OpenAPI 3.0.x, so the page hands it
# the same document relabelled; validatorUrl null keeps it from calling the public validator.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>glm-queue API</title>
  <link rel="stylesheet" href="{{ url_for('docs.static', filename='swagger-ui.css') }}">
  <link rel="icon" type="image/png" href="{{ url_for('docs.static', filename='favicon-32x32.png') }}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{{ url_for('docs.static', filename='swagger-ui-bundle.js') }}"></script>
  <script>
    fetch({{ url_for('docs.openapi') | tojson }})
      .then((response) => response.json())
      .then((spec) => {
        window.ui = SwaggerUIBundle({
          spec: { ...spec, openapi: "3.0.3" },
          dom_id: "#swagger-ui",
          deepLinking: true,
          validatorUrl: null,
          presets: [SwaggerUIBundle.presets.apis],
        });
      });
  </script>
</body>
</html>
"""


@bp.get("/openapi.json")
def openapi() -> Response:
    """Describe the API, with the input fields of every model served."""
    svc = services()
    try:
        model = svc.serving_model()
        fields, variables = model.input_fields, model.variables
    except ApiError:
        fields, variables = (), ()
    served = {
        name: tuple(manifest["input_fields"])
        for name, serving, manifests in svc.catalog()
        for manifest in manifests
        if manifest.get("version") == serving
    }
    return jsonify(build_spec(svc.settings, fields, served, variables))


@bp.get("/docs")
def docs() -> str:
    """Show Swagger UI on the description."""
    return render_template_string(_PAGE)
