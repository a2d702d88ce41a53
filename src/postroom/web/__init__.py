"""The REST API: aiohttp routes speaking the Rossum v1 API. Only `postroom.service` imports this."""
