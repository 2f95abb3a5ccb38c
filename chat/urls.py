from django.urls import path

from chat import api, views

app_name = "chat"

urlpatterns = [
    path("", views.page, name="page"),
    path("chat", api.chat, name="chat"),
    path("chat/stream", api.chat_stream, name="stream"),
    path("chat/feedback", views.feedback, name="feedback"),
]
