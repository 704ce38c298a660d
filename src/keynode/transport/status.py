"""The one place where keynode errors become gRPC status codes, and back.

Servicer methods are wrapped with :func:`grpc_errors`: a :class:`KeynodeError` becomes
its status code with the error's message; anything else is logged server-side and the
peer sees only ``INTERNAL: internal error`` — never a stack trace.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from keynode.errors import (
    InputError,
    KeynodeError,
    LimitExceeded,
    NotFound,
    PolicyDenied,
    ProfileMismatch,
    ProtocolError,
    Unavailable,
    VerificationError,
)

log = logging.getLogger(__name__)

# Most specific first: ProfileMismatch is a ProtocolError.
_TO_CODE: list[tuple[type[KeynodeError], grpc.StatusCode]] = [
    (ProfileMismatch, grpc.StatusCode.FAILED_PRECONDITION),
    (ProtocolError, grpc.StatusCode.INVALID_ARGUMENT),
    (InputError, grpc.StatusCode.INVALID_ARGUMENT),
    (VerificationError, grpc.StatusCode.UNAUTHENTICATED),
    (PolicyDenied, grpc.StatusCode.PERMISSION_DENIED),
    (LimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
]

_FROM_CODE: dict[grpc.StatusCode, type[KeynodeError]] = {
    grpc.StatusCode.FAILED_PRECONDITION: ProtocolError,
    grpc.StatusCode.INVALID_ARGUMENT: ProtocolError,
    grpc.StatusCode.OUT_OF_RANGE: ProtocolError,
    grpc.StatusCode.UNAUTHENTICATED: VerificationError,
    grpc.StatusCode.PERMISSION_DENIED: PolicyDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: LimitExceeded,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
}


def status_code_for(exc: KeynodeError) -> grpc.StatusCode:
    """The gRPC status code a keynode error is reported with."""
    for kind, code in _TO_CODE:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.UNKNOWN


def _abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    if isinstance(exc, KeynodeError):
        context.abort(status_code_for(exc), str(exc))
    log.exception("unexpected error in servicer", exc_info=exc)
    context.abort(grpc.StatusCode.INTERNAL, "internal error")


F = TypeVar("F", bound=Callable[..., Any])


def grpc_errors(method: F) -> F:
    """Wrap a servicer method (unary or streaming) so that errors become clean statuses."""
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def streaming(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                yield from method(self, request, context)
            except Exception as exc:
                _abort(context, exc)

        return streaming  # type: ignore[return-value]

    @functools.wraps(method)
    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:
            _abort(context, exc)

    return unary  # type: ignore[return-value]


def error_from_rpc(err: grpc.RpcError, target: str = "") -> KeynodeError:
    """Turn a failed call into the matching keynode error, keeping the server's message."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    if code is grpc.StatusCode.UNAVAILABLE:
        where = f" at {target}" if target else ""
        return Unavailable(f"cannot reach the keynode server{where}: {details}")
    if code is grpc.StatusCode.FAILED_PRECONDITION and "profile" in (details or ""):
        return ProfileMismatch(details)
    kind = _FROM_CODE.get(code, KeynodeError)
    return kind(f"{code.name}: {details}")
