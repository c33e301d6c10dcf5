"""Web pages (Jinja2 + htmx), vendored static assets."""
