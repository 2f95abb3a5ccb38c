from django.urls import path

from knowledge import originals, views

app_name = "knowledge"

urlpatterns = [
    path("source/<int:document_id>/", views.source, name="source"),
    path("source/<int:document_id>/original", originals.original, name="original"),
]
