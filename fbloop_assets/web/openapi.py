"""The OpenAPI 3.0 schema of the service API, served at ``/api/v1/openapi.json``.

Written by hand so that it states exactly what `service_api` enforces: the request body's fields
and bounds, every status a caller can get, and the bearer-token scheme. Schemathesis runs over it
in the tests (`fbloop_tests/test_service_api.py`).
"""

from __future__ import annotations

from typing import Any

MAX_K = 100
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
CAMPAIGN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,119}$"

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {
        400: "the body or a parameter is not what the schema says",
        401: "no valid service token (missing, unknown or revoked)",
        403: "the token's scope does not allow this",
        404: "no such campaign",
        409: "the request id was already used for another campaign",
        413: "the body is too large",
        422: "the campaign has no eligible creator",
        503: "nothing to score against yet (no creators or campaigns materialized)",
    }
    return {
        str(s): {
            "description": words[s],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for s in statuses
    }


def _ok(schema: str, description: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"200": {"description": description, "content": {"application/json": {"schema": ref}}}}


SLATE_ITEM = {
    "type": "object",
    "required": ["rank", "creator_id", "score", "propensity", "recommendation_id"],
    "properties": {
        "rank": {"type": "integer", "minimum": 1},
        "creator_id": {"type": "string"},
        "score": {"type": "number"},
        "propensity": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1},
        "recommendation_id": {"type": "string"},
    },
}
SLATE = {
    "type": "object",
    "required": ["request_id", "campaign_id", "weights_version", "arm", "served_at", "replayed", "slate"],
    "properties": {
        "request_id": {"type": "string"},
        "campaign_id": {"type": "string"},
        "weights_version": {"type": "string"},
        "arm": {"type": "string", "enum": ["production", "canary", "retired"]},
        "served_at": {"type": "string", "format": "date-time"},
        "replayed": {"type": "boolean", "description": "true when the request id was answered before"},
        "slate": {"type": "array", "items": SLATE_ITEM},
    },
}
SUGGESTION_REQUEST = {
    "type": "object",
    "required": ["campaign_id"],
    "additionalProperties": False,
    "properties": {
        "campaign_id": {"type": "string", "pattern": CAMPAIGN_ID_PATTERN},
        "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10},
        "request_id": {
            "type": "string",
            "pattern": REQUEST_ID_PATTERN,
            "description": "the caller's idempotency key: a retry with the same id gets the same slate",
        },
    },
}
WEIGHTS = {
    "type": "object",
    "required": ["production", "canary", "canary_share"],
    "properties": {
        "production": {"type": "object", "additionalProperties": True},
        "canary": {"type": "object", "nullable": True, "additionalProperties": True},
        "canary_share": {"type": "number"},
    },
}
CAMPAIGN = {
    "type": "object",
    "required": ["campaign", "eligible_creators", "scored_against"],
    "properties": {
        "campaign": {"type": "object", "additionalProperties": True},
        "eligible_creators": {"type": "integer", "minimum": 0},
        "scored_against": {"type": "object", "additionalProperties": True},
    },
}


def openapi_schema() -> dict[str, Any]:
    """The schema document."""
    secured: list[dict[str, list[str]]] = [{"serviceToken": []}]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "fbloop suggestion API",
            "version": "1",
            "description": "Creator suggestions for campaigns, ranked with the production weights "
            "(or the canary for its share of requests); every slate is logged before it is returned.",
        },
        "paths": {
            "/api/v1/suggestions": {
                "post": {
                    "summary": "A slate of creators for a campaign",
                    "security": secured,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/SuggestionRequest"}}
                        },
                    },
                    "responses": _ok("Slate", "the slate, logged")
                    | _errors(400, 401, 403, 404, 409, 413, 422, 503),
                }
            },
            "/api/v1/campaigns/{campaign_id}": {
                "get": {
                    "summary": "A campaign as the scorer sees it",
                    "security": secured,
                    "parameters": [
                        {
                            "name": "campaign_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": CAMPAIGN_ID_PATTERN},
                        }
                    ],
                    "responses": _ok("Campaign", "the campaign") | _errors(400, 401, 403, 404, 503),
                }
            },
            "/api/v1/weights/current": {
                "get": {
                    "summary": "The weights that serve now",
                    "security": secured,
                    "responses": _ok("Weights", "production, the canary if one runs") | _errors(401, 403),
                }
            },
        },
        "components": {
            "securitySchemes": {"serviceToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "SuggestionRequest": SUGGESTION_REQUEST,
                "Slate": SLATE,
                "Campaign": CAMPAIGN,
                "Weights": WEIGHTS,
                "Error": _ERROR,
            },
        },
    }
