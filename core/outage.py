"""Turn an unreachable database into a clear 503 instead of a traceback page."""

import logging

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

log = logging.getLogger(__name__)
MESSAGE = "The service is temporarily unavailable (its database cannot be reached). Try again soon."


def is_outage(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    try:
        from psycopg_pool import PoolTimeout
    except ImportError:
        return False
    return isinstance(exc, PoolTimeout) or (
        isinstance(exc, DatabaseError) and isinstance(exc.__cause__, PoolTimeout)
    )


def outage_response(request: HttpRequest) -> HttpResponse:
    response: HttpResponse
    if request.path.startswith("/chat") or "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse({"error": MESSAGE}, status=503)
    else:
        response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = "5"
    return response


class ServiceUnavailableMiddleware(MiddlewareMixin):
    """Only process_exception: MiddlewareMixin then adds no thread hop on the async path."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_outage(exception):
            log.warning("database unavailable: %r", exception)
            return outage_response(request)
        return None
