from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("keys/", views.keys, name="keys"),
    path("keys/<int:key_id>/revoke/", views.revoke, name="revoke"),
]
