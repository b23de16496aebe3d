"""The JSON calls of principals' console logins (``/principals/{name}/logins``): which person at
the OpenID Connect issuer signs in to the web console as which principal."""

from __future__ import annotations

from registry.client._errors import JSON
from registry.client._refs import seg
from registry.client._transport import _Transport


class _Logins(_Transport):
    def add_login(
        self,
        principal: str,
        subject: str,
        *,
        issuer: str | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """``POST .../logins`` → LoginRead (issuer None: the console's configured one)."""
        body: JSON = {"subject": subject}
        if issuer is not None:
            body["issuer"] = issuer
        result: JSON = self._json(
            "POST",
            f"/api/v1/principals/{seg(principal)}/logins",
            json_body=body,
            idempotency_key=self._key(idempotency_key),
        )
        return result

    def list_logins(self, principal: str) -> JSON:
        """``GET .../logins`` → {"items": [LoginRead]}."""
        result: JSON = self._json("GET", f"/api/v1/principals/{seg(principal)}/logins")
        return result

    def remove_login(self, principal: str, subject: str, *, issuer: str | None = None) -> None:
        """``DELETE .../logins?subject=…``: that person no longer signs in as ``principal``."""
        params = {"subject": subject, **({"issuer": issuer} if issuer is not None else {})}
        self._request("DELETE", f"/api/v1/principals/{seg(principal)}/logins", params=params)
