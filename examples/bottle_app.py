"""Bottle on ferrocorn: ferrocorn --pythonpath wheels/bottle-0.13.2-py2.py3-none-any.whl examples.bottle_app:app"""

import json

import bottle

app = bottle.Bottle()

PAGE = """<h1>Hello {{name}}</h1><ul>
% for item in items:
<li>{{item}}</li>
% end
</ul>"""


@app.get("/")
def index():
    return "bottle index"


@app.get("/hello/<name>")
def hello(name):
    return bottle.template(PAGE, name=name, items=[1, 2, 3])


@app.get("/api/items/<item_id:int>")
def item(item_id):
    return {"id": item_id, "name": "item %d" % item_id}


@app.post("/form")
def form():
    fields = {name: bottle.request.forms.getunicode(name) for name in bottle.request.forms}
    files = {name: upload.file.read().decode() for name, upload in bottle.request.files.items()}
    bottle.response.content_type = "application/json"
    return json.dumps({"fields": fields, "files": files})


@app.get("/cookie")
def cookie():
    flavour = bottle.request.get_cookie("flavour")
    if flavour:
        return "flavour=%s" % flavour
    bottle.response.set_cookie("flavour", "oat")
    return "cookie set"


@app.get("/redirect")
def moved():
    bottle.redirect("/hello/redirected")


@app.get("/boom")
def boom():
    raise RuntimeError("boom")


@app.error(404)
def not_found(error):
    return "custom not found"


@app.error(500)
def server_error(error):
    return "custom error page"
