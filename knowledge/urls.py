from django.urls import path

from knowledge import views

app_name = "knowledge"

urlpatterns = [
    path("source/<int:document_id>/", views.source, name="source"),
]
