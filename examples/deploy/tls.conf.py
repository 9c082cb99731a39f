# HTTPS without a proxy in front: ferrocorn (or Gunicorn) terminates TLS
# itself. Start it as root (or with CAP_NET_BIND_SERVICE, or from
# ferrocorn.socket): the arbiter binds port 443 and reads the key, which
# certbot keeps readable by root only; the workers run as www-data and never
# open it.
#
#   ferrocorn -c examples/deploy/tls.conf.py myapp:app
#
# Renewal: certbot renew --deploy-hook "systemctl reload ferrocorn" (or
# "kill -HUP $(cat /run/ferrocorn.pid)"): new workers serve the renewed
# certificate, the old ones finish their connections.
import os

live = os.environ.get("CERT_DIR", "/etc/letsencrypt/live/example.com")

bind = [os.environ.get("BIND", "0.0.0.0:443")]
workers = 2
user = os.environ.get("WORKER_USER", "www-data")
certfile = f"{live}/fullchain.pem"
keyfile = f"{live}/privkey.pem"
# Mozilla's "intermediate" TLS 1.2 suites; TLS 1.3 stays on. The DHE ones are
# not in rustls and are skipped with a warning.
ciphers = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
)
accesslog = "-"
