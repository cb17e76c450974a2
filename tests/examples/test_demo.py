"""`shipmate demo`, exactly as the README tells a newcomer to run it: it must finish successfully,
release the web service and the worker together, and show the v3 release gated with the failing
migration's last log lines."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_releases_v2_gates_v3_and_releases_v4(tmp_path):
    shipmate = os.environ["SHIPMATE_BIN"]
    env = dict(os.environ)
    # A Python environment of its own, as on a fresh machine (pip's cache keeps it quick).
    env["SHIPMATE_DEMO_VENV"] = str(tmp_path / "venv")
    env.pop("AWS_ENDPOINT_URL", None)
    result = subprocess.run(
        [shipmate, "demo"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stderr
    sys.stderr.write(output[-6000:])
    assert result.returncode == 0, output[-4000:]

    # The example's Python environment was prepared, with progress.
    assert "preparing the example's Python environment" in output
    # v2's migration ran and its logs were streamed, the last line included.
    assert "migrate |   Applying catalog.0004_backfill_slug..." in output
    assert "migrate |   Applying catalog.0005_book_slug_required... OK" in output
    # v3 was gated, with the failing migration's last lines in the output, before any rollout.
    v3 = output[output.index("==> release v3:") : output.index("==> release v4:")]
    assert "KeyError: 'the-dispossessed-1974'" in v3
    assert "was gated: shipmate exited 4" in v3
    assert " updated to " not in v3
    # v2 kept answering throughout, and after.
    served = re.search(r"while v3 was gated the v2 tasks answered (\d+) requests and failed (\d+)", output)
    assert served and int(served.group(1)) > 0 and served.group(2) == "0", output[-3000:]
    assert "after v3 attempt: GET" in v3 and "release v2, 4 books" in v3
    # v4 went live and serves the new column.
    assert re.search(r"after v4: GET \S+ -> release v4, 4 books, first: .*price_cents", output)
    assert re.search(r"v3 .* gated \(exit 4\)", output)
    # The worker is released with the web, behind the same single migration.
    v2 = output[output.index("==> release v2:") : output.index("==> release v3:")]
    assert "services web, worker" in v2
    assert v2.count("migrate: started task") == 1
    assert "deploy: worker updated to bookshop-worker:2" in v2
    assert re.search(r"after v2: worker logs -> worker \(release v2\): 4 books, fields .*slug", v2)
    assert "deploy: worker updated" not in v3
    assert re.search(r"after v4: worker logs -> worker \(release v4\): 4 books, fields .*price_cents", output)


def test_demo_refuses_a_database_that_is_not_empty(tmp_path, postgres_database):
    import psycopg

    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute("CREATE TABLE catalog_book (id serial primary key)")
    env = dict(os.environ)
    env["SHIPMATE_DEMO_VENV"] = str(tmp_path / "venv")
    env.pop("AWS_ENDPOINT_URL", None)
    result = subprocess.run(
        [os.environ["SHIPMATE_BIN"], "demo", "--database-url", postgres_database],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode != 0, result.stderr[-3000:]
    assert "is not empty (1 tables)" in result.stderr, result.stderr[-3000:]
    assert "needs an empty database" in result.stderr
    # It stopped before any release: no gate, no false failure counts.
    assert "gated" not in result.stderr
    assert "==> release" not in result.stderr
