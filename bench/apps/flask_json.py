"""A Flask JSON route, as in the issue's benchmark."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify(message="hello", items=[1, 2, 3], ok=True)
