"""The reviewers' labeling web app: `create_app` (Starlette, Jinja2 templates, design tokens in CSS)."""
