"""Falcon on ferrocorn: ferrocorn --pythonpath wheels/falcon-4.1.0-py3-none-any.whl examples.falcon_app:app"""

import string

import falcon

PAGE = string.Template("<h1>Hello $name</h1><ul>$items</ul>")


class Index:
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "falcon index"


class Hello:
    def on_get(self, req, resp, name):
        items = "".join("<li>%d</li>" % i for i in (1, 2, 3))
        resp.content_type = falcon.MEDIA_HTML
        resp.text = PAGE.substitute(name=name, items=items)


class Item:
    def on_get(self, req, resp, item_id):
        resp.media = {"id": item_id, "name": "item %d" % item_id}


class Form:
    def on_post(self, req, resp):
        fields, files = {}, {}
        if req.content_type and req.content_type.startswith("multipart/form-data"):
            for part in req.get_media():
                if part.filename:
                    files[part.name] = part.stream.read().decode()
                else:
                    fields[part.name] = part.text
        else:
            fields = dict(req.get_media())
        resp.media = {"fields": fields, "files": files}


class Cookie:
    def on_get(self, req, resp):
        flavour = req.get_cookie_values("flavour")
        resp.content_type = falcon.MEDIA_TEXT
        if flavour:
            resp.text = "flavour=%s" % flavour[0]
        else:
            resp.set_cookie("flavour", "oat", secure=False)
            resp.text = "cookie set"


class Redirect:
    def on_get(self, req, resp):
        resp.status = falcon.HTTP_302
        resp.location = "/hello/redirected"


class Boom:
    def on_get(self, req, resp):
        raise RuntimeError("boom")


def not_found(req, resp, error, params):
    resp.status = falcon.HTTP_404
    resp.content_type = falcon.MEDIA_TEXT
    resp.text = "custom not found"


def server_error(req, resp, error, params):
    resp.status = falcon.HTTP_500
    resp.content_type = falcon.MEDIA_TEXT
    resp.text = "custom error page"


app = falcon.App()
app.add_route("/", Index())
app.add_route("/hello/{name}", Hello())
app.add_route("/api/items/{item_id:int}", Item())
app.add_route("/form", Form())
app.add_route("/cookie", Cookie())
app.add_route("/redirect", Redirect())
app.add_route("/boom", Boom())
app.add_error_handler(Exception, server_error)
app.add_error_handler(falcon.HTTPNotFound, not_found)
