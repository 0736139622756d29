from django.urls import path

from media import views

urlpatterns = [
    path("images/", views.images, name="images"),
    path("images/<int:image_id>/delete/", views.image_delete, name="image_delete"),
    # The public address of an image in an email: never changes once handed out.
    path("i/<str:key>/<str:variant>.<str:ext>", views.image_public, name="image_public"),
]
