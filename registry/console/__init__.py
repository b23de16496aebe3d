"""The web console: server-rendered pages for approvers, auditors and ML engineers.

Pages are Jinja2 templates rendered by the same FastAPI app; every page and action calls the
same services as the API with an :class:`~registry.access.actor.Actor` built from the signed-in
principal, so authorization and audit have one path. Sign-in exchanges an API token for a
server-side session (:mod:`registry.console.sessions`): an HttpOnly, SameSite=Strict cookie
holding a random key whose sha256 is stored; every form carries a CSRF token derived from the
session key; responses carry a strict Content-Security-Policy (:mod:`registry.console.web`).
"""
