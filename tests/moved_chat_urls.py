"""A URLconf that moves the chat under /v2/: the lean handler's paths must follow it."""

from django.urls import include, path

urlpatterns = [path("v2/", include("chat.urls")), path("", include("knowledge.urls"))]
