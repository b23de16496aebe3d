"""The JSON calls of the governance API: principals, tokens, trusted publishers (OIDC), policies,
deployments, promotions and the audit log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry.client._errors import JSON
from registry.client._refs import seg
from registry.client._transport import _Transport


def _given(**fields: Any) -> JSON:
    """The fields that are not None; the others stay out of the body (the server's default)."""
    return {name: value for name, value in fields.items() if value is not None}


class _Governance(_Transport):
    """One typed method per governance endpoint.

    Mutating calls send an ``Idempotency-Key`` (and are retried) except the OIDC exchange (a CI
    token is single-use). Minting an API token is retried too: the server replays the same token
    to the same credential (it keeps the secret sealed to that credential, never in the clear).
    """

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> JSON:
        """``GET path`` (retried) → its JSON body; ``params`` left at None are not sent."""
        result: JSON = self._json("GET", path, params=params)
        return result

    def _post(self, path: str, body: JSON | None, idempotency_key: str | None) -> JSON:
        """``POST path`` under ``idempotency_key`` (a fresh one when None), so it is retried."""
        result: JSON = self._json(
            "POST", path, json_body=body, idempotency_key=self._key(idempotency_key)
        )
        return result

    # --- principals ------------------------------------------------------------------------

    def create_principal(
        self,
        name: str,
        role: str,
        *,
        kind: str = "human",
        namespaces: Sequence[str] = (),
        ci_identity: str | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """``POST /api/v1/principals`` (admin) → PrincipalRead."""
        return self._post(
            "/api/v1/principals",
            {
                "name": name,
                "role": role,
                "kind": kind,
                "namespaces": list(namespaces),
                "ci_identity": ci_identity,
            },
            idempotency_key,
        )

    def list_principals(self, *, limit: int | None = None, page_token: str | None = None) -> JSON:
        return self._get("/api/v1/principals", self._page(limit, page_token))

    def grant_namespaces(
        self, name: str, namespaces: Sequence[str], *, idempotency_key: str | None = None
    ) -> JSON:
        """``POST /api/v1/principals/{name}/namespaces``: add memberships → PrincipalRead."""
        return self._post(
            f"/api/v1/principals/{seg(name)}/namespaces",
            {"namespaces": list(namespaces)},
            idempotency_key,
        )

    def revoke_namespaces(
        self, name: str, namespaces: Sequence[str], *, idempotency_key: str | None = None
    ) -> JSON:
        """``POST /api/v1/principals/{name}/namespaces/remove``: remove memberships →
        PrincipalRead."""
        return self._post(
            f"/api/v1/principals/{seg(name)}/namespaces/remove",
            {"namespaces": list(namespaces)},
            idempotency_key,
        )

    def set_principal_role(
        self, name: str, role: str, *, idempotency_key: str | None = None
    ) -> JSON:
        """``POST /api/v1/principals/{name}/role`` (admin) → PrincipalRead."""
        return self._post(f"/api/v1/principals/{seg(name)}/role", {"role": role}, idempotency_key)

    def disable_principal(self, name: str, *, idempotency_key: str | None = None) -> JSON:
        """``POST /api/v1/principals/{name}/disable`` (admin) → PrincipalRead."""
        return self._post(f"/api/v1/principals/{seg(name)}/disable", None, idempotency_key)

    def enable_principal(self, name: str, *, idempotency_key: str | None = None) -> JSON:
        """``POST /api/v1/principals/{name}/enable`` (admin) → PrincipalRead."""
        return self._post(f"/api/v1/principals/{seg(name)}/enable", None, idempotency_key)

    # --- API tokens ------------------------------------------------------------------------

    def create_token(
        self,
        *,
        principal: str | None = None,
        name: str = "",
        ttl_days: int | None = None,
        no_expiry: bool = False,
        scopes: Sequence[str] | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """``POST /api/v1/tokens`` → TokenRead plus ``token`` (shown once; a retry with the same
        key and credential gets the same token).

        ``ttl_days`` / ``scopes`` left at None are not sent: the server then gives the calling
        token's scopes and 90 days clamped to the calling token's expiry. ``no_expiry`` asks
        for a token that never expires (refused unless the calling token never expires).
        """
        ttl: JSON = {"ttl_days": None} if no_expiry else _given(ttl_days=ttl_days)
        scope_list = None if scopes is None else list(scopes)
        body = {"principal": principal, "name": name, **ttl, **_given(scopes=scope_list)}
        return self._post("/api/v1/tokens", body, idempotency_key)

    def list_tokens(
        self,
        *,
        principal: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> JSON:
        """A page of ``principal``'s tokens (default: the caller's), newest first, without
        secrets: ``{items, next_page_token}``."""
        params = {"principal": principal, **self._page(limit, page_token)}
        return self._get("/api/v1/tokens", params)

    def revoke_token(self, token_id: str, *, idempotency_key: str | None = None) -> JSON:
        return self._post(f"/api/v1/tokens/{seg(token_id)}/revoke", None, idempotency_key)

    # --- trusted publishers (CI OIDC) ------------------------------------------------------

    def add_publisher(self, body: Mapping[str, Any], *, idempotency_key: str | None = None) -> JSON:
        """``POST /api/v1/publishers`` (admin) → PublisherRead."""
        return self._post("/api/v1/publishers", dict(body), idempotency_key)

    def list_publishers(self, *, limit: int | None = None, page_token: str | None = None) -> JSON:
        """A page of trusted publishers by name (admin): ``{items, next_page_token}``."""
        return self._get("/api/v1/publishers", self._page(limit, page_token))

    def exchange_oidc_token(self) -> JSON:
        """``POST /api/v1/oidc/token``; this client's bearer token must be the CI OIDC JWT.
        Not retried (the JWT is single-use)."""
        result: JSON = self._json("POST", "/api/v1/oidc/token")
        return result

    # --- policies --------------------------------------------------------------------------

    def get_policies(self) -> JSON:
        """The active policy set: version, digest, source, applied_at and the three texts."""
        return self._get("/api/v1/policies")

    def apply_policies(
        self,
        *,
        schema_text: str,
        policies_text: str,
        gates_text: str,
        rollout_text: str = "",
        source: str = "",
        idempotency_key: str | None = None,
    ) -> JSON:
        """``POST /api/v1/policies`` (admin): validate and activate → PolicyRead."""
        return self._post(
            "/api/v1/policies",
            {
                "schema_text": schema_text,
                "policies_text": policies_text,
                "gates_text": gates_text,
                "rollout_text": rollout_text,
                "source": source,
            },
            idempotency_key,
        )

    # --- deployments -----------------------------------------------------------------------

    def create_deployment(
        self, name: str, *, base: str, adapter: str, idempotency_key: str | None = None
    ) -> JSON:
        """``POST /api/v1/deployments`` with base ``NAME@REV`` and adapter ``NS/NAME``."""
        return self._post(
            "/api/v1/deployments", {"name": name, "base": base, "adapter": adapter}, idempotency_key
        )

    def list_deployments(self, *, limit: int | None = None, page_token: str | None = None) -> JSON:
        return self._get("/api/v1/deployments", self._page(limit, page_token))

    def get_deployment(self, name: str) -> JSON:
        return self._get(f"/api/v1/deployments/{seg(name)}")

    def deployment_history(
        self,
        name: str,
        *,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> JSON:
        """Revisions newest first (``{items, next_page_token}``); ``since`` (inclusive) and
        ``until`` (exclusive) bound ``effective_at`` (ISO 8601 with a zone)."""
        return self._get(
            f"/api/v1/deployments/{seg(name)}/history",
            {"since": since, "until": until, **self._page(limit, page_token)},
        )

    # --- promotions ------------------------------------------------------------------------

    def request_promotion(
        self,
        ref: str,
        *,
        deployment: str,
        reason: str | None = None,
        override_reason: str | None = None,
        plan: str | None = None,
        plan_spec: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """``POST /api/v1/promotions`` → PromotionRead (state ``blocked`` when gates fail).
        ``plan``: the rollout plan (``rollout.yaml``) used when a stable version already serves;
        the policy's ``default_plan`` when None. ``plan_spec``: a plan of this request's own
        (``rollout.yaml``'s shape, named ``plan``); it must meet the policy's floor
        (``plan_below_floor`` otherwise)."""
        spec = None if plan_spec is None else dict(plan_spec)
        body: JSON = {
            "ref": ref,
            "deployment": deployment,
            "reason": reason,
            "override_reason": override_reason,
            **_given(plan=plan, plan_spec=spec),
        }
        return self._post("/api/v1/promotions", body, idempotency_key)

    def list_promotions(
        self,
        *,
        deployment: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> JSON:
        return self._get(
            "/api/v1/promotions",
            {"deployment": deployment, "state": state, **self._page(limit, page_token)},
        )

    def get_promotion(self, promotion_id: str) -> JSON:
        return self._get(f"/api/v1/promotions/{seg(promotion_id)}")

    def _decide(
        self, promotion_id: str, verb: str, body: JSON | None, idempotency_key: str | None
    ) -> JSON:
        return self._post(f"/api/v1/promotions/{seg(promotion_id)}/{verb}", body, idempotency_key)

    def approve_promotion(
        self,
        promotion_id: str,
        *,
        comment: str = "",
        plan_digest: str | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """Approve; ``plan_digest`` (the ``plan_digest`` of the promotion you looked at) binds
        the approval to that rollout plan (``plan_digest_mismatch`` when it is not the
        request's)."""
        body: JSON = {"comment": comment}
        if plan_digest is not None:
            body["plan_digest"] = plan_digest
        return self._decide(promotion_id, "approve", body, idempotency_key)

    def reject_promotion(
        self, promotion_id: str, *, reason: str, idempotency_key: str | None = None
    ) -> JSON:
        return self._decide(promotion_id, "reject", {"reason": reason}, idempotency_key)

    def cancel_promotion(self, promotion_id: str, *, idempotency_key: str | None = None) -> JSON:
        return self._decide(promotion_id, "cancel", None, idempotency_key)

    # --- audit -----------------------------------------------------------------------------

    def audit_events(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
        page_token: str | None = None,
    ) -> JSON:
        """Audit events in sequence order; ``action`` / ``resource`` match as prefixes."""
        return self._get(
            "/api/v1/audit/events",
            {
                "actor": actor,
                "action": action,
                "resource": resource,
                "since": since,
                "until": until,
                **self._page(limit, page_token),
            },
        )

    def audit_verify(self, *, require_checkpoint: bool = False) -> JSON:
        """``{ok, events, checkpoints, first_bad_seq, reason, checkpoint_seq, bad_range,
        warnings, last_checkpoint_seq}``; with ``require_checkpoint`` no checkpoint at all is
        the error ``audit_checkpoint_missing``."""
        return self._get(
            "/api/v1/audit/verify", {"require_checkpoint": "true"} if require_checkpoint else None
        )

    def audit_checkpoint(self, *, idempotency_key: str | None = None) -> JSON | None:
        """Export a signed checkpoint now: ``{seq, hash, at, key_id}``, or None (empty log)."""
        result: JSON | None = self._json(
            "POST", "/api/v1/audit/checkpoints", idempotency_key=self._key(idempotency_key)
        )
        return result
