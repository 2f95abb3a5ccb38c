from django.urls import path

from accounts import oidc, views

app_name = "accounts"

urlpatterns = [
    path("keys/", views.keys, name="keys"),
    path("keys/<int:key_id>/revoke/", views.revoke, name="revoke"),
    path("socket-ticket/", views.socket_ticket, name="socket_ticket"),
    path("oidc/authenticate/", oidc.SignInView.as_view(), name="oidc_sign_in"),
    path("oidc/callback/", oidc.CallbackView.as_view(), name="oidc_callback"),
]
