"""Small response helpers the apps' views share: JSON errors, the CSRF check of JSON endpoints,
and the header for pages and answers only their caller may see."""

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware


def json_error(message: str, status: int, retry_after: float | None = None) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if retry_after:
        response["Retry-After"] = str(max(1, round(retry_after)))
    return response


def csrf_failure(request: HttpRequest) -> HttpResponseBase | None:
    """A logged-in session is ambient authority, so it must prove it comes from our page.
    Anonymous callers carry none, so programs may post without a token (PROTOCOL.md)."""
    # The check reads only the view's csrf_exempt flag and never calls get_response, so neither
    # needs to exist here.
    check = CsrfViewMiddleware(lambda r: None)  # type: ignore[arg-type]
    return check.process_view(request, None, (), {})  # type: ignore[arg-type]


def private[R: HttpResponseBase](response: R) -> R:
    """What only this caller may read: no shared cache may keep it, no disk either."""
    response["Cache-Control"] = "private, no-store"
    return response
