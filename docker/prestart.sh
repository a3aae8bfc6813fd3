#!/bin/sh
# Wait for the database, apply migrations (only the api container does: CC_RUN_MIGRATIONS=1), then exec.
set -eu
python - <<'PY'
import os, sys, time
from sqlalchemy import create_engine, text
url = os.environ["CC_DATABASE_URL"]
for attempt in range(60):
    try:
        with create_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
        break
    except Exception as exc:  # noqa: BLE001
        print(f"waiting for database ({exc.__class__.__name__})", file=sys.stderr)
        time.sleep(1)
else:
    sys.exit("database did not come up")
PY
if [ "${CC_RUN_MIGRATIONS:-0}" = "1" ]; then
  callcenter migrate
fi
exec "$@"
