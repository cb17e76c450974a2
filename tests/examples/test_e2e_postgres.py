"""The whole system on one machine: the example Django project, released through `shipmate
deploy` against `shipmate local`, on a real PostgreSQL.

v1 is migrated with a plain RunTask and served by a 2-task service; then `shipmate deploy`
releases v2 (a column and its backfill), v3 (a migration that fails halfway: the release must be
gated, the database untouched, the v2 tasks answering throughout) and v4 (the fix). After each
step: the django_migrations rows, the table's columns (information_schema) and the HTTP answers
of the service's running tasks, found through DescribeTasks; and every call the deploy made is
in pipelines/iam-actions.json (the endpoint's request log). Then, each on a fresh database: two
deploys of v2 started together run the migration task once (the second attaches to it, or waits
for the lock, or gives up with exit 7), and deploys of v2 and v4 started together never run
their migrations at the same time.
"""
import json
import subprocess
import threading
import time
import urllib.request
import uuid

import boto3
import botocore.config
import pytest

import django_example as example
from local_endpoint import LocalEndpoint, shipmate_bin

REGION = "us-east-1"
MIGRATE = ["python", "manage.py", "migrate", "--noinput"]
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-0example"],
                                   "securityGroups": ["sg-0example"],
                                   "assignPublicIp": "DISABLED"}}
DEADLINE = 180.0
# `shipmate deploy` exit codes (docs/exit-codes.md).
MIGRATION_FAILED = 4
LOCK_NOT_ACQUIRED = 7


@pytest.fixture(scope="module")
def deploy_ready():
    """Skips only when `shipmate deploy --help` fails (the command does not exist). A missing
    binary is a broken set-up (scripts/test builds it) and fails instead."""
    result = subprocess.run([shipmate_bin(), "deploy", "--help"], capture_output=True,
                            text=True, timeout=60)
    if result.returncode != 0:
        pytest.skip(f"`shipmate deploy --help` exited {result.returncode}: "
                    f"{result.stderr.strip()}")


@pytest.fixture(scope="module")
def endpoint(deploy_ready):
    server = LocalEndpoint()
    yield server
    code = server.stop()
    assert code == 0, f"`shipmate local serve` exited {code} on SIGTERM: {server.stderr()}"


@pytest.fixture(scope="module")
def images(endpoint, tmp_path_factory):
    """bookshop:v1 .. bookshop:v4 built and pushed once for the module."""
    root = tmp_path_factory.mktemp("images")
    for release in example.RELEASES:
        endpoint.push(example.build(release, root / release), f"bookshop:{release}")
    return {release: f"bookshop:{release}" for release in example.RELEASES}


def client(endpoint, service):
    return boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION,
    ).client(service, endpoint_url=endpoint.url,
             config=botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"}))


class Bookshop:
    """One cluster with the bookshop's log group, task definition and `web` service, on one
    database. The task definition has the shape it has on Fargate (awsvpc, awslogs, the
    gunicorn command); only the environment's PATH (the prepared venv plays the image's Python)
    is particular to `shipmate local`."""

    def __init__(self, endpoint, database_url):
        self.endpoint = endpoint
        self.database_url = database_url
        self.ecs = client(endpoint, "ecs")
        self.logs = client(endpoint, "logs")
        suffix = uuid.uuid4().hex[:8]
        self.cluster = f"bookshop-{suffix}"
        self.service = "web"
        self.family = f"bookshop-web-{suffix}"
        self.log_group = f"/ecs/bookshop-{suffix}"
        self.ecs.create_cluster(clusterName=self.cluster)
        self.logs.create_log_group(logGroupName=self.log_group)

    def register(self, image):
        environment = example.app_env(self.database_url, WEB_CONCURRENCY="1",
                                      DJANGO_LOG_LEVEL="WARNING")
        definition = self.ecs.register_task_definition(
            family=self.family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            executionRoleArn="arn:aws:iam::000000000000:role/bookshopExecution",
            taskRoleArn="arn:aws:iam::000000000000:role/bookshopTask",
            containerDefinitions=[{
                "name": "web",
                "image": image,
                "essential": True,
                "command": ["gunicorn", "bookshop.wsgi"],
                "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
                "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": self.log_group,
                    "awslogs-region": REGION,
                    "awslogs-stream-prefix": "web",
                }},
            }],
        )
        return definition["taskDefinition"]["taskDefinitionArn"]

    def run_task(self, task_definition, command):
        """A one-off task with `command`, followed to STOPPED; its container's exit code."""
        started = self.ecs.run_task(
            cluster=self.cluster, taskDefinition=task_definition, launchType="FARGATE",
            networkConfiguration=NETWORK,
            overrides={"containerOverrides": [{"name": "web", "command": command}]},
        )
        assert started["failures"] == [], started["failures"]
        arn = started["tasks"][0]["taskArn"]

        def stopped():
            [task] = self.ecs.describe_tasks(cluster=self.cluster, tasks=[arn])["tasks"]
            return task if task["lastStatus"] == "STOPPED" else None

        task = wait_for(stopped, f"task {arn} to stop")
        return task["containers"][0].get("exitCode")

    def create_service(self, task_definition):
        self.ecs.create_service(
            cluster=self.cluster, serviceName=self.service, taskDefinition=task_definition,
            desiredCount=2, launchType="FARGATE", networkConfiguration=NETWORK,
            deploymentConfiguration={
                "maximumPercent": 200, "minimumHealthyPercent": 100,
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            },
        )

    def running_tasks(self):
        """The service's RUNNING tasks as (task ARN, task definition ARN, IP)."""
        arns = self.ecs.list_tasks(cluster=self.cluster, serviceName=self.service,
                                   desiredStatus="RUNNING")["taskArns"]
        if not arns:
            return []
        tasks = self.ecs.describe_tasks(cluster=self.cluster, tasks=arns)["tasks"]
        return [(task["taskArn"], task["taskDefinitionArn"], task_ip(task))
                for task in tasks if task["lastStatus"] == "RUNNING"]

    def wait_serving(self, release):
        """Waits until the service is exactly 2 RUNNING tasks that all answer as `release`
        (old tasks drained); returns those tasks."""
        def settled():
            tasks = self.running_tasks()
            if len(tasks) != 2:
                return None
            try:
                answers = [get_json(ip, "/healthz") for _, _, ip in tasks]
            except OSError:
                return None
            return tasks if all(a == {"status": "ok", "release": release} for a in answers) \
                else None

        return wait_for(settled, f"2 tasks of {self.service} answering as {release}")

    def service_state(self):
        [service] = self.ecs.describe_services(cluster=self.cluster,
                                               services=[self.service])["services"]
        return service

    def migration_tasks(self):
        """Every task of the cluster (running or stopped) whose command is the migration."""
        arns = []
        for status in ("RUNNING", "STOPPED"):
            arns += self.ecs.list_tasks(cluster=self.cluster, desiredStatus=status)["taskArns"]
        tasks = []
        for start in range(0, len(arns), 100):
            tasks += self.ecs.describe_tasks(cluster=self.cluster,
                                             tasks=arns[start:start + 100])["tasks"]
        return [task for task in tasks
                if any(override.get("command") == MIGRATE
                       for override in task.get("overrides", {}).get("containerOverrides", []))]

    def deploy(self, image, **popen):
        """`shipmate deploy --config examples/django/shipmate.toml --image IMAGE`, cluster and
        service through the file's ${SHIPMATE_CLUSTER} / ${SHIPMATE_SERVICE}."""
        env = dict(self.endpoint.env, SHIPMATE_CLUSTER=self.cluster,
                   SHIPMATE_SERVICE=self.service, NO_COLOR="1")
        command = [shipmate_bin(), "deploy", "--config", str(example.EXAMPLE / "shipmate.toml"),
                   "--image", image]
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **popen)


def finish(process, timeout=600):
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"shipmate deploy did not finish in {timeout} s:\n{stderr[-4000:]}")
    return process.returncode, stdout, stderr


def task_ip(task):
    for container in task.get("containers", []):
        for interface in container.get("networkInterfaces", []):
            if interface.get("privateIpv4Address"):
                return interface["privateIpv4Address"]
    for attachment in task.get("attachments", []):
        for detail in attachment.get("details", []):
            if detail["name"] == "privateIPv4Address":
                return detail["value"]
    raise AssertionError(f"task {task['taskArn']} has no private IPv4 address")


def get_json(ip, path):
    with urllib.request.urlopen(f"http://{ip}:8000{path}", timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def wait_for(condition, what, timeout=DEADLINE, interval=0.25):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def assert_database_at(database_url, release):
    assert example.applied_catalog_migrations(database_url) == \
        example.CATALOG_MIGRATIONS[release]
    assert example.book_columns(database_url) == example.BOOK_COLUMNS[release]


def assert_tasks_serve(tasks, release):
    """Every running service task answers /api/books with the rows `release` shapes."""
    for _, _, ip in tasks:
        books = get_json(ip, "/api/books")
        assert books["release"] == release
        assert [list(book) for book in books["books"]] == \
            [example.BOOK_COLUMNS[release]] * len(example.SLUGS)
        if release in ("v2", "v4"):
            assert [book["slug"] for book in books["books"]] == example.SLUGS
        if release == "v4":
            assert [book["price_cents"] for book in books["books"]] == example.PRICES_V4


class Poller(threading.Thread):
    """GETs /api/books on fixed tasks, round after round, until stopped; records every failure.
    `rounds` counts completed rounds, so a test can make sure polling covered a whole window."""

    def __init__(self, tasks, release):
        super().__init__(daemon=True)
        self.ips = [ip for _, _, ip in tasks]
        self.release = release
        self.stopping = threading.Event()
        self.rounds = 0
        self.answers = 0
        self.failures = []

    def run(self):
        while not self.stopping.is_set():
            for ip in self.ips:
                try:
                    books = get_json(ip, "/api/books")
                    if books["release"] != self.release:
                        self.failures.append((ip, f"answered as {books['release']}"))
                    self.answers += 1
                except (OSError, AssertionError, ValueError) as error:
                    self.failures.append((ip, repr(error)))
            self.rounds += 1
            self.stopping.wait(0.05)

    def await_rounds(self, count):
        target = self.rounds + count
        wait_for(lambda: self.rounds >= target or not self.is_alive(),
                 f"{count} polling rounds", interval=0.05)

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)


def start_at_v1(endpoint, images, database_url):
    shop = Bookshop(endpoint, database_url)
    v1 = shop.register(images["v1"])
    # The very first schema comes from a plain one-off task, as before any shipmate release.
    assert shop.run_task(v1, MIGRATE) == 0
    shop.create_service(v1)
    return shop, shop.wait_serving("v1")


def test_release_history_v1_to_v4_on_postgres(endpoint, images, postgres_database):
    shop, tasks = start_at_v1(endpoint, images, postgres_database)
    assert_database_at(postgres_database, "v1")
    assert_tasks_serve(tasks, "v1")

    # v2: the column and its backfill, migrated from the new image, then rolled out.
    endpoint.clear_requests()
    code, stdout, stderr = finish(shop.deploy(images["v2"]))
    assert code == 0, stderr[-4000:]
    assert "Applying catalog.0004_backfill_slug" in stdout + stderr
    assert "slug 4: the-dispossessed-1974" in stdout + stderr
    calls = endpoint.operations()
    assert_database_at(postgres_database, "v2")
    v2_tasks = shop.wait_serving("v2")
    assert_tasks_serve(v2_tasks, "v2")
    state = shop.service_state()
    assert len(state["deployments"]) == 1
    assert state["taskDefinition"] == v2_tasks[0][1]
    # Every call shipmate made is in the list the CI policy grants (pipelines/iam-actions.json).
    for_deploy = {entry["action"] for entry in json.loads(
        (example.REPO / "pipelines" / "iam-actions.json").read_text())["actions"]
        if "deploy" in entry["commands"]}
    assert ("ecs", "RunTask") in calls
    assert {f"{prefix}:{operation}" for prefix, operation in calls} <= for_deploy, calls

    # v3: the migration fails halfway. The release is gated: non-zero exit, the failing
    # migration's last log lines shown, the database and the service untouched, and the v2
    # tasks answer throughout.
    poller = Poller(v2_tasks, "v2")
    poller.start()
    try:
        # Polling covers the whole release: a full round before it starts, one after it ends.
        poller.await_rounds(1)
        code, stdout, stderr = finish(shop.deploy(images["v3"]))
        poller.await_rounds(2)
    finally:
        poller.stop()
    assert code == MIGRATION_FAILED, stderr[-4000:]
    assert "KeyError: 'the-dispossessed-1974'" in stdout + stderr
    assert poller.failures == [], poller.failures[:10]
    assert poller.answers >= 3 * len(v2_tasks), f"only {poller.answers} answers"
    assert_database_at(postgres_database, "v2")
    assert sorted(shop.running_tasks()) == sorted(v2_tasks)
    assert shop.service_state()["taskDefinition"] == v2_tasks[0][1]
    assert_tasks_serve(v2_tasks, "v2")

    # v4: the fixed migration, under the same name v3's never committed.
    code, stdout, stderr = finish(shop.deploy(images["v4"]))
    assert code == 0, stderr[-4000:]
    assert "price the-dispossessed-1974: None" in stdout + stderr
    assert_database_at(postgres_database, "v4")
    v4_tasks = shop.wait_serving("v4")
    assert_tasks_serve(v4_tasks, "v4")
    assert not {arn for arn, _, _ in v4_tasks} & {arn for arn, _, _ in v2_tasks}
    # The rollout stopped the v2 tasks with SIGTERM; gunicorn finished cleanly (exit 0, not
    # 137 after a SIGKILL at stopTimeout).
    stopped = shop.ecs.describe_tasks(cluster=shop.cluster,
                                      tasks=[arn for arn, _, _ in v2_tasks])["tasks"]
    assert [(task["lastStatus"], task["containers"][0].get("exitCode")) for task in stopped] == \
        [("STOPPED", 0)] * len(v2_tasks)


def test_concurrent_deploys_migrate_once(endpoint, images, postgres_database):
    shop, _ = start_at_v1(endpoint, images, postgres_database)
    before = len(shop.migration_tasks())  # v1's own migration task

    first = shop.deploy(images["v2"])
    second = shop.deploy(images["v2"])
    results = [finish(first), finish(second)]

    codes = [code for code, _, _ in results]
    assert 0 in codes, [stderr[-3000:] for _, _, stderr in results]
    for code, _, stderr in results:
        # The other deploy either waited for the lock and found the release done (0), or gave
        # up on the lock with its own documented exit code and says so.
        assert code == 0 or (code == LOCK_NOT_ACQUIRED and "lock" in stderr.lower()), \
            stderr[-3000:]
    assert len(shop.migration_tasks()) - before == 1
    assert_database_at(postgres_database, "v2")
    assert_tasks_serve(shop.wait_serving("v2"), "v2")


def test_concurrent_releases_of_different_images_never_migrate_at_once(
        endpoint, images, postgres_database):
    shop, _ = start_at_v1(endpoint, images, postgres_database)
    v1_migrations = {task["taskArn"] for task in shop.migration_tasks()}

    releases = [shop.deploy(images["v2"]), shop.deploy(images["v4"])]
    results = [finish(process) for process in releases]

    for code, _, stderr in results:
        assert code == 0 or (code == LOCK_NOT_ACQUIRED and "lock" in stderr.lower()), \
            stderr[-3000:]
    assert any(code == 0 for code, _, _ in results)
    migrations = [task for task in shop.migration_tasks() if task["taskArn"] not in v1_migrations]
    assert len(migrations) == sum(1 for code, _, _ in results if code == 0)
    # The lock: one migration stopped before the next one was even created.
    spans = sorted((task["createdAt"], task["stoppedAt"]) for task in migrations)
    for (_, first_stopped), (second_created, _) in zip(spans, spans[1:]):
        assert first_stopped <= second_created, spans
    # Whatever the order, v4's migration ran: the schema is v4's, and the service serves the
    # release that rolled out last, on every task.
    assert_database_at(postgres_database, "v4")
    running = shop.ecs.describe_task_definition(
        taskDefinition=shop.service_state()["taskDefinition"])["taskDefinition"]
    service_release = running["containerDefinitions"][0]["image"].rsplit(":", 1)[1]
    assert service_release in ("v2", "v4")
    assert_tasks_serve(shop.wait_serving(service_release), service_release)
