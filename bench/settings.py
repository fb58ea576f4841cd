"""Settings for the benchmark process only (``bench/run.py``): the project's
settings, read from the environment as usual, with four changes.

* ``DEBUG = False`` so no query is recorded (set after the project's settings
  ran with their own DEBUG, so static files and security settings stay as in
  development: the test client speaks plain HTTP and no collectstatic is needed).
* ``ROOT_URLCONF = "bench.urls"``: the project's URLs plus the stock Django
  admin sites the suite compares against (``bench/stock_admin.py``).
* API throttles raised out of the way: the suite measures the server, not the limits.
* One persistent database connection, as a long-running worker keeps it.
"""

from usagelogs_site.settings import *  # noqa: F403
from usagelogs_site.settings import DATABASES, REST_FRAMEWORK

DEBUG = False
ROOT_URLCONF = "bench.urls"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"token": "1000000/min", "ingest": "1000000/min"},
}
DATABASES["default"]["CONN_MAX_AGE"] = None
# Users are created per run; the production hasher would only add seconds.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
