"""Step 2: ask the gateway, outside any transaction of ours."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from flask import Flask, current_app

from ...gateways.base import (
    BulkCharges,
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    DeclineKind,
    GatewayError,
    GatewayTimeout,
    GatewayUnavailable,
)
from ...state import get_state


def answered_in_one_call() -> bool:
    """Whether the gateway takes a batch's charges in one call (``BulkCharges``): then a
    batch waits for one answer, not for many calls in flight."""
    gateway = get_state().require_gateway()
    return isinstance(gateway, BulkCharges) and gateway.bulk_charges


def charge(
    requests: Sequence[ChargeRequest], pool: ThreadPoolExecutor | None = None
) -> list[ChargeResult]:
    """Ask the gateway, outside any transaction of ours: the whole list in one call when it
    takes batches (``BulkCharges``), else one call per charge (``pool``: several at once).

    A timeout is an *unknown* outcome, an outage a soft decline.
    """
    if not requests:
        return []
    gateway = get_state().require_gateway()
    if len(requests) > 1 and answered_in_one_call():
        assert isinstance(gateway, BulkCharges)
        answers = gateway.charge_many(requests)
        if len(answers) != len(requests):
            raise GatewayError(f"{len(answers)} answers to {len(requests)} charges")
        return [_answered(answer) for answer in answers]
    if pool is None or len(requests) == 1:
        return [_charge_one(request) for request in requests]
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return list(pool.map(lambda request: _charge_in(app, request), requests))


def _charge_in(app: Flask, request: ChargeRequest) -> ChargeResult:
    with app.app_context():
        return _charge_one(request)


def _charge_one(request: ChargeRequest) -> ChargeResult:
    try:
        return get_state().require_gateway().charge(request)
    except (GatewayTimeout, GatewayUnavailable) as error:
        return _unanswered(error)


def _answered(answer: ChargeResult | GatewayError) -> ChargeResult:
    if isinstance(answer, GatewayTimeout | GatewayUnavailable):
        return _unanswered(answer)
    if isinstance(answer, GatewayError):
        raise answer  # what ``charge`` would have raised: a bug, not a payment outcome
    return answer


def _unanswered(error: GatewayTimeout | GatewayUnavailable) -> ChargeResult:
    if isinstance(error, GatewayTimeout):
        return ChargeResult(
            status=ChargeStatus.UNKNOWN,
            message="The payment service did not answer; we will confirm the payment shortly.",
        )
    return ChargeResult(
        status=ChargeStatus.DECLINED,
        decline_kind=DeclineKind.SOFT,
        decline_code="service_unavailable",
        message="The payment service is unavailable. Nothing was charged; please try again.",
    )
