from django.urls import path

from chat import views

app_name = "chat"

urlpatterns = [
    path("", views.page, name="page"),
    path("source/<int:document_id>/", views.source, name="source"),
]
