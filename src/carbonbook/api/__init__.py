"""The REST JSON API under /api/v1 (FastAPI), documented by its OpenAPI schema."""
