"""gunicorn reads this file from its working directory (the image's root).

Under `shipmate local` every task gets its own loopback address in SHIPMATE_TASK_IP, so two tasks
of one service can both listen on port 8000; on ECS (awsvpc) the task owns its network interface
and 0.0.0.0 is right.
"""
import os

bind = f"{os.environ.get('SHIPMATE_TASK_IP') or '0.0.0.0'}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# SIGTERM (ECS StopTask, a rolling deployment) lets requests in flight finish, well inside the
# 30 s ECS waits before SIGKILL.
graceful_timeout = 10
accesslog = "-"
# The control socket lives at one path per user, so two tasks on one machine would fight over it.
control_socket_disable = True
