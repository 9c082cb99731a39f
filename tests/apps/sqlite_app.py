"""sqlite3 is built in: a query against an in-memory database."""

import sqlite3
def application(environ, start_response):
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x)")
    db.execute("insert into t values (?)", (41,))
    (value,) = db.execute("select x + 1 from t").fetchone()
    body = ("sqlite %s answer %d" % (sqlite3.sqlite_version, value)).encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
