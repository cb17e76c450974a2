# shipmate's Django preset, run in the release's image as
#  python -c <this> manage.py plan|expand|contract [--unknown=allow|refuse] [--allow-unsafe]
# Reports in stdout lines 'SHIPMATE1 <json>'. Exit 0 done, 3 refused (nothing applied), 1 error.
import json, os, runpy, sys
import django.core.management as M

A = sys.argv[1:]
O = A[2:]
n = 0
U = 'unsafe'
SV = 'the serving code '
t = lambda o: type(o).__name__


def F(kind, **k):  # one frame, under 4000 bytes
  global n
  d = dict(seq=n, kind=kind, **k)
  s = json.dumps(d, separators=(',', ':'))
  while len(s) > 3990:
    x = max((x for x in d if type(d[x]) is str), key=lambda x: len(d[x]))
    d[x] = d[x][:len(d[x]) // 2] + '\u2026'
    s = json.dumps(d, separators=(',', ':'))
  print('SHIPMATE1 ' + s, flush=True)
  n += 1


def mark(m):  # django-safemigrate >= 5: Safe(when=When.X); older: enum or str
  s = getattr(m, 'safe', 0)
  s = s() if callable(s) else s
  s = getattr(getattr(s, 'when', s), 'value', s)
  return s if s in ('before_deploy', 'after_deploy') else 'always'


def judge(o, a, st, new, P):
  # -> class, why it breaks the serving code, why it breaks the new code if run after deploy
  T = t(o)
  if T in ('RunSQL', 'RunPython'):
    return 'unknown', f'{T} is not inspected: {getattr(getattr(o, "code", 0), "__qualname__", 0) or o.sql}', 0
  if T == 'SeparateDatabaseAndState':
    return next((j for j in (judge(x, a, st, new, P) for x in o.database_operations) if j[0] != 'safe'), ('safe', 0, 0))
  key = a, getattr(o, 'model_name_lower', 0) or getattr(o, 'old_name_lower', 0) or getattr(o, 'name_lower', 0)
  ms = st.models.get(key)
  tb = ms and f"table `{ms.options.get('db_table') or '_'.join(key)}`"
  nm = getattr(o, 'old_name', 0) or getattr(o, 'name', 0)
  f = ms and ms.fields.get(nm)
  g = getattr(o, 'field', 0) or f
  c = g and f'column `{g.db_column or nm + "_id" * bool(g.many_to_one or g.one_to_one)}` of {tb}'
  req = lambda f: not (f.null or f.many_to_many or getattr(f, 'generated', 0)) and getattr(f, 'db_default', P) is P
  u = lambda w, nw=0: (U, SV + w, nw) if key not in new else ('safe', 0, nw)  # a table of this plan: unused yet
  if T == 'RemoveField':
    return u(f'still reads {c}', f and req(f) and f'the new code inserts rows without NOT NULL {c}')
  if T in ('DeleteModel', 'AlterModelTable'):
    return u(f'still uses {tb}')
  if T in ('RenameField', 'RenameModel'):
    return u(f'still uses {c or tb}', 'the new code uses the new name before it exists')
  if T == 'AddField' and req(g):
    return u(f'inserts rows without the new NOT NULL {c}')
  if T == 'AlterField' and f and f.null and req(g):
    return u(f'may insert rows without {c}, now NOT NULL')
  return 'safe', 0, 0


def run(*_):
  import django
  django.setup()
  from django.db import DEFAULT_DB_ALIAS, connections
  from django.db.migrations.executor import MigrationExecutor
  from django.db.models import NOT_PROVIDED
  from django.core.management import sql
  ph = A[1]
  c = connections[DEFAULT_DB_ALIAS]
  c.prepare_database()
  I = lambda m: f'{m.app_label}.{m.name}'

  def cb(a, m=None, *_):
    if a == 'apply_start':
      print(f'Applying {I(m)}...', flush=True)
    if a == 'apply_success':
      F('applied', migration=I(m))
  ex = MigrationExecutor(c, cb)
  L = ex.loader
  L.check_consistent_history(c)
  if L.detect_conflicts():
    sys.exit(f'conflicting migrations {L.detect_conflicts()}: makemigrations --merge')
  plan = ex.migration_plan(L.graph.leaf_nodes())
  F('start', phase=ph, django=django.get_version(), unknown=('allow', 'refuse')['--unknown=refuse' in O], allow_unsafe='--allow-unsafe' in O)
  S = lambda: ex._create_project_state(with_applied_migrations=True)
  st, new, R = S(), set(), []
  W = {m: 'contract' if ph == 'contract' or mark(m) == 'after_deploy' else 'expand' for m, b in plan}
  late = {(m.app_label, m.name): I(m) for m in W if W[m] != 'expand'}
  for m, b in plan:
    i, a, x = I(m), m.app_label, None
    E = W[m] == 'expand' and ph != 'contract'  # checked against the serving code
    F('migration', id=i, marker=mark(m), run=W[m], operations=len(m.operations), **({'backward': 1} if b else {}))
    if b:
      R.append((i, x, f'the plan unapplies {i}', 'release code that knows every applied migration'))
      continue
    d = E and [late[k] for k in L.graph.forwards_plan((a, m.name)) if k in late]
    if d:
      R.append((i, x, f'it runs before the deployment but depends on {d[0]}, which runs after it', f'mark it Safe.after_deploy() too, or release {d[0]} first'))
    for x, o in enumerate(m.operations):
      k, w, nw = judge(o, a, st, new, NOT_PROVIDED)
      if t(o) == 'CreateModel':
        new.add((a, o.name_lower))
      o.state_forwards(a, st)
      r = None
      if E and k == U:
        r = w, 'split it: expand now (nullable or db_default; stop using what goes), contract after (the drop marked Safe.after_deploy())', 1
      elif E and k == 'unknown' and '--unknown=refuse' in O:
        r = w, 'review it; allow unknown operations, or mark it Safe.after_deploy()', 0
      elif ph != 'contract' and not E and nw:
        r = nw, 'make it nullable or give it a db_default in an earlier release' if t(o) == 'RemoveField' else 'add the new name now, drop the old one after deploy', 1
      ov = r and r[2] and '--allow-unsafe' in O
      e = {'class': k}
      if w:
        e['why'] = w
      if ov:
        e['overridden'] = r[0]
      F('operation', migration=i, index=x, type=t(o), text=o.describe(), **e)
      if r and not ov:
        R.append((i, x) + r[:2])
  for i, x, w, h in R:
    F('refusal', migration=i, index=x, why=w, hint=h)
    print(f'REFUSED {i}: {w} ({h})', flush=True)
  sub = [(m, b) for m, b in plan if W[m] == ph]
  v = 'nothing' if not plan else 'planned' if ph == 'plan' else 'refused' if R else 'applied'
  if v == 'applied' and sub:
    sql.emit_pre_migrate_signal(1, False, c.alias, plan=sub, apps=S().apps)
    ex.migrate(None, plan=sub)
    sql.emit_post_migrate_signal(1, False, c.alias, plan=sub)
  F('end', verdict=v, frames=n)
  sys.exit(3 if v == 'refused' else 0)


if len(A) < 2 or A[1] not in ('plan', 'expand', 'contract') or set(O) - {'--unknown=allow', '--unknown=refuse', '--allow-unsafe'}:
  sys.exit('usage: manage.py plan|expand|contract [--unknown=allow|refuse] [--allow-unsafe]')
p = os.path.abspath(A[0])
# manage.py's directory first on sys.path, as `python manage.py` has it
sys.path[:sys.path[:1] == ['']] = [os.path.dirname(os.path.realpath(p))]
sys.argv = [A[0], 'migrate']
M.execute_from_command_line = run
runpy.run_path(p, run_name='__main__')
sys.exit(f'{A[0]} never called execute_from_command_line')
