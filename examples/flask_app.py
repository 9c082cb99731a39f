"""Flask on ferrocorn (see README, "Frameworks"):

    ferrocorn --pythonpath "$(ls -d wheels/*.whl | paste -sd,)" examples.flask_app:app
"""

from flask import Flask, jsonify, make_response, redirect, render_template_string, request

app = Flask(__name__)

PAGE = "<h1>Hello {{ name }}</h1><ul>{% for item in items %}<li>{{ item }}</li>{% endfor %}</ul>"


@app.get("/")
def index():
    return "flask index"


@app.get("/hello/<name>")
def hello(name):
    return render_template_string(PAGE, name=name, items=[1, 2, 3])


@app.get("/api/items/<int:item_id>")
def item(item_id):
    return jsonify(id=item_id, name="item %d" % item_id)


@app.post("/form")
def form():
    files = {name: upload.read().decode() for name, upload in request.files.items()}
    return jsonify(fields=request.form.to_dict(), files=files)


@app.get("/cookie")
def cookie():
    flavour = request.cookies.get("flavour")
    response = make_response("flavour=%s" % flavour if flavour else "cookie set")
    if not flavour:
        response.set_cookie("flavour", "oat")
    return response


@app.get("/redirect")
def moved():
    return redirect("/hello/redirected")


@app.get("/boom")
def boom():
    raise RuntimeError("boom")


@app.errorhandler(404)
def not_found(error):
    return "custom not found", 404


@app.errorhandler(500)
def server_error(error):
    return "custom error page", 500
