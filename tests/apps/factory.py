"""An app built by a factory, as in `factory:create_app('hi', repeat=2)`."""


def create_app(greeting="hello", repeat=1):
    body = (greeting * repeat).encode()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    return app


not_callable = "a string"
