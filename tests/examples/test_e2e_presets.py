"""Zero-downtime migrations with `shipmate deploy --preset django` (docs/presets.md), end to end:
the example project's v5 → v7 story on PostgreSQL through `shipmate local`, with the service's
tasks answering reads and writes throughout. v1 is migrated by a plain task and v4 released with
a plain `migrate` (v2's NOT NULL slug is, rightly, what the preset would refuse for v1's code);
from v5 on, releases go through the preset:

* v5 (a nullable `year`, backfilled) and v6 (`published` made nullable, no longer written) apply
  before their rollouts;
* v5-drop-required (an after-deploy drop of a NOT NULL column) and v7-dependent (a pre-deploy
  migration depending on an after-deploy one) are refused, and so is v7-unmarked (the drop
  without its marker): exit 9, nothing applied, the service untouched;
* `plan --pending` shows v7's plan, classified, and applies nothing;
* v7 drops `published` after its deployment completed (the contract task starts after ECS's
  record of the deployment finished), while old and new tasks keep answering GET and POST;
* a rollback to v6 then needs --force; a release with nothing pending says so and rolls out;
* with `--db-lock-timeout`, a migration that meets a held table lock fails fast with PostgreSQL's
  lock-timeout error, gated.
"""
import json
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

import django_example as example
from local_endpoint import LocalEndpoint, shipmate_bin
from test_e2e_postgres import MIGRATE, Bookshop, task_ip

RELEASES = ("v1", "v4", "v5", "v6", "v7", "v7-unmarked", "v7-dependent", "v5-drop-required")
REFUSED = 9
MIGRATION_FAILED = 4


@pytest.fixture(scope="module")
def endpoint():
    server = LocalEndpoint()
    yield server
    assert server.stop() == 0, server.stderr()


@pytest.fixture(scope="module")
def images(endpoint, tmp_path_factory):
    root = tmp_path_factory.mktemp("preset-images")
    for release in RELEASES:
        endpoint.push(example.build(release, root / release), f"bookshop:{release}")
    # The same code as v7 under another tag: a release with nothing pending.
    endpoint.push(root / "v7", "bookshop:v7-again")
    return {release: f"bookshop:{release}" for release in (*RELEASES, "v7-again")}


def shipmate(shop, *args, timeout=600):
    env = dict(shop.endpoint.env, NO_COLOR="1")
    return subprocess.run([shipmate_bin(), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def release_args(shop, image, *extra):
    return ["--cluster", shop.cluster, "--service", shop.service, "--image", image,
            "--poll-interval", "500ms", "--log-quiet-period", "1s", *extra]


def deploy(shop, image, *extra):
    return shipmate(shop, "deploy", *release_args(shop, image, "--preset", "django",
                                                   "--output", "json", *extra))


def report(result):
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return next(line for line in lines if line.get("event") == "report")


def columns(url):
    return example.book_columns(url)


class ReadsAndWrites(threading.Thread):
    """GET and POST /api/books on every RUNNING task of the service that answered its health
    check, round after round. An HTTP error answer always counts; a refused connection only while
    the task is still meant to run (a task being stopped by the rollout stops answering, which is
    not the schema's doing)."""

    def __init__(self, shop):
        super().__init__(daemon=True)
        self.shop = shop
        self.stopping = threading.Event()
        self.failures = []
        self.writes = 0
        self.reads = 0

    def tasks(self):
        arns = self.shop.ecs.list_tasks(cluster=self.shop.cluster, serviceName=self.shop.service,
                                        desiredStatus="RUNNING")["taskArns"]
        if not arns:
            return []
        return [task for task in self.shop.ecs.describe_tasks(
            cluster=self.shop.cluster, tasks=arns)["tasks"] if task["lastStatus"] == "RUNNING"]

    def still_running(self, arn):
        [task] = self.shop.ecs.describe_tasks(cluster=self.shop.cluster, tasks=[arn])["tasks"]
        return task["desiredStatus"] == "RUNNING" and task["lastStatus"] == "RUNNING"

    def run(self):
        n = 0
        ready = set()
        while not self.stopping.is_set():
            for task in self.tasks():
                ip = task_ip(task)
                if task["taskArn"] not in ready:
                    # A load balancer sends traffic once a task answers its health check; a
                    # task still starting up is not serving yet.
                    try:
                        with urllib.request.urlopen(f"http://{ip}:8000/healthz", timeout=5):
                            ready.add(task["taskArn"])
                    except OSError:
                        continue
                n += 1
                body = json.dumps({"title": f"Book {n}", "author": "Poller", "published": 2000,
                                   "year": 2000}).encode()
                for method, data in (("GET", None), ("POST", body)):
                    request = urllib.request.Request(
                        f"http://{ip}:8000/api/books", data=data, method=method,
                        headers={"Content-Type": "application/json"})
                    try:
                        with urllib.request.urlopen(request, timeout=10) as response:
                            response.read()
                        if method == "POST":
                            self.writes += 1
                        else:
                            self.reads += 1
                    except urllib.error.HTTPError as error:
                        self.failures.append((task["taskDefinitionArn"], method, error.code,
                                              error.read()[:300]))
                    except OSError as error:
                        if self.still_running(task["taskArn"]):
                            self.failures.append((task["taskDefinitionArn"], method, repr(error)))
            self.stopping.wait(0.1)

    def stop(self):
        self.stopping.set()
        self.join(timeout=60)


def record_of(shop):
    service = shop.service_state()
    return shop.ecs.describe_service_deployments(
        serviceDeploymentArns=[service["currentServiceDeployment"]])["serviceDeployments"][0]


def contract_tasks(shop):
    arns = shop.ecs.list_tasks(cluster=shop.cluster, desiredStatus="STOPPED")["taskArns"]
    tasks = shop.ecs.describe_tasks(cluster=shop.cluster, tasks=arns)["tasks"] if arns else []
    return [t for t in tasks if t.get("startedBy", "").endswith("/contract")]


def shop_on_v4(endpoint, images, url):
    """The bookshop serving v1, then released to v4 with a plain migrate (the history before
    the preset)."""
    shop = Bookshop(endpoint, url)
    v1 = shop.register(images["v1"])
    assert shop.run_task(v1, MIGRATE) == 0
    shop.create_service(v1)
    shop.wait_serving("v1")
    plain = shipmate(shop, "deploy", *release_args(shop, images["v4"], "--migrate",
                                                  "python manage.py migrate --noinput"))
    assert plain.returncode == 0, plain.stderr[-3000:]
    return shop


def test_expand_and_contract_through_v7_on_postgres(endpoint, images, postgres_database):
    url = postgres_database
    shop = shop_on_v4(endpoint, images, url)
    shop.wait_serving("v4")

    # v5 and v6: expand only, applied before their rollouts.
    for release in ("v5", "v6"):
        result = deploy(shop, images[release])
        assert result.returncode == 0, result.stderr[-3000:]
        plan = report(result)["migration_plan"]
        assert plan["verdict"] == "applied", plan
        assert all(m["run"] == "expand" for m in plan["migrations"]), plan
        shop.wait_serving(release)
    assert "published" in columns(url)
    applied = example.applied_catalog_migrations(url)
    v6 = shop.service_state()["taskDefinition"]

    # Refused before any schema change: nothing applied, the service untouched.
    for release, words in (("v5-drop-required", "NOT NULL"), ("v7-dependent", "depends on"),
                           ("v7-unmarked", "RemoveField")):
        result = deploy(shop, images[release])
        assert result.returncode == REFUSED, (release, result.stderr[-3000:])
        assert "refused before any schema change" in result.stderr, result.stderr[-2000:]
        assert words in result.stderr, (release, result.stderr[-2000:])
        assert "hint:" in result.stderr
        assert report(result)["result"] == "migration_refused"
        assert example.applied_catalog_migrations(url) == applied, release
        assert "published" in columns(url)
        assert shop.service_state()["taskDefinition"] == v6
        shop.wait_serving("v6")

    # plan --pending: v7's drop, classified, held back; nothing applied.
    planned = shipmate(shop, "plan", *release_args(shop, images["v7"], "--preset", "django",
                                                    "--pending"))
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "0009_remove_book_published (after deploy: after the deployment completes)" \
        in planned.stdout, planned.stdout
    assert "RemoveField" in planned.stdout or "Remove field" in planned.stdout, planned.stdout
    assert example.applied_catalog_migrations(url) == applied
    assert "published" in columns(url)

    # v7: the drop held back until the rollout completed; reads and writes never fail.
    poller = ReadsAndWrites(shop)
    poller.start()
    try:
        result = deploy(shop, images["v7"])
    finally:
        poller.stop()
    assert result.returncode == 0, result.stderr[-4000:]
    assert poller.failures == [], poller.failures[:5]
    assert poller.writes > 0 and poller.reads > 0
    final = report(result)
    assert [m["id"] for m in final["migration_plan"]["migrations"] if m["run"] == "contract"] \
        == ["catalog.0009_remove_book_published"]
    assert final["contract"]["exit_code"] == 0
    assert "published" not in columns(url)
    record = record_of(shop)
    assert record["status"] == "SUCCESSFUL"
    [contract] = contract_tasks(shop)
    assert contract["createdAt"] >= record["finishedAt"], (contract["createdAt"], record)
    shop.wait_serving("v7")

    # Back to v6 would run code that writes `published`: refused without --force.
    back = shipmate(shop, "rollback", "--cluster", shop.cluster, "--service", shop.service,
                    "--poll-interval", "500ms")
    assert back.returncode == 2, back.stderr[-2000:]
    assert "contract" in back.stderr, back.stderr[-2000:]

    # Nothing pending: said, and rolled out.
    again = deploy(shop, images["v7-again"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing to migrate" in again.stderr, again.stderr[-3000:]
    assert report(again)["services"][0]["outcome"] == "completed"


def test_a_lock_timeout_fails_the_migration_fast_while_a_table_is_locked(endpoint, images,
                                                                        postgres_database):
    import psycopg

    url = postgres_database
    shop = shop_on_v4(endpoint, images, url)
    applied = example.applied_catalog_migrations(url)
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE catalog_book IN ACCESS EXCLUSIVE MODE")
        result = deploy(shop, images["v5"], "--db-lock-timeout", "2s")
        # Still held: the migration gave up on its own.
        assert holder.execute("SELECT 1").fetchone() == (1,)
        holder.rollback()
    assert result.returncode == MIGRATION_FAILED, result.stderr[-3000:]
    assert "lock timeout" in result.stderr or "LockNotAvailable" in result.stderr, \
        result.stderr[-3000:]
    assert "hint:" in result.stderr
    assert example.applied_catalog_migrations(url) == applied
