"""Django in one module (settings, views, URLs; its SQLite database is only
used by management commands):

    ferrocorn --pythonpath "$(ls -d wheels/*.whl | paste -sd,)" examples.django_app:application
    ferrocorn run --pythonpath ... examples/django_app.py migrate   # as manage.py
"""

import json
import os
import sys

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="example-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DJANGO_DATABASE", os.path.join(os.path.dirname(__file__), "db.sqlite3")),
        }
    },
    TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
    USE_TZ=True,
    # Django's message catalogues sit inside its wheel, where gettext cannot open them.
    USE_I18N=False,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpResponse, HttpResponseNotFound, HttpResponseServerError, JsonResponse  # noqa: E402
from django.shortcuts import redirect  # noqa: E402
from django.template import engines  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.http import require_GET, require_POST  # noqa: E402

PAGE = "<h1>Hello {{ name }}</h1><ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>"


@require_GET
def index(request):
    return HttpResponse("django index", content_type="text/plain")


def hello(request, name):
    return HttpResponse(engines["django"].from_string(PAGE).render({"name": name, "items": [1, 2, 3]}))


def item(request, item_id):
    return JsonResponse({"id": item_id, "name": "item %d" % item_id})


@require_POST
def form(request):
    files = {name: upload.read().decode() for name, upload in request.FILES.items()}
    body = json.dumps({"fields": request.POST.dict(), "files": files})
    return HttpResponse(body, content_type="application/json")


def cookie(request):
    flavour = request.COOKIES.get("flavour")
    if flavour:
        return HttpResponse("flavour=%s" % flavour, content_type="text/plain")
    response = HttpResponse("cookie set", content_type="text/plain")
    response.set_cookie("flavour", "oat")
    return response


def moved(request):
    return redirect("/hello/redirected")


def boom(request):
    raise RuntimeError("boom")


def not_found(request, exception):
    return HttpResponseNotFound("custom not found")


def server_error(request):
    return HttpResponseServerError("custom error page")


urlpatterns = [
    path("", index),
    path("hello/<str:name>", hello),
    path("api/items/<int:item_id>", item),
    path("form", form),
    path("cookie", cookie),
    path("redirect", moved),
    path("boom", boom),
]
handler404 = not_found
handler500 = server_error

application = get_wsgi_application()

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
