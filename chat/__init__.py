"""The chat engine: protocol, rooms and presence, fan-out, limits, history; no tornado.web."""
