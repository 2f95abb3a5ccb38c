from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.oidc import SignOutView
from core.login_throttle import throttled
from ragsite import health

admin.site.site_header = "ragsite knowledge base"
admin.site.site_title = "ragsite admin"
admin.site.index_title = "Curate what the chat can answer from"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/login/", throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    path("accounts/login/", throttled(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", SignOutView.as_view(), name="logout"),
    path("accounts/", include("accounts.urls")),
    path("", include("knowledge.urls")),
    path("", include("chat.urls")),
]
