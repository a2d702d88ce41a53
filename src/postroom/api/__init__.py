"""The REST API edge (aiohttp): declared routes, middlewares, and the generated OpenAPI document."""
