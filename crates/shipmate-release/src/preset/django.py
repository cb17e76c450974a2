# shipmate's Django preset: python -c <this> manage.py plan|expand|contract [options]
# Frames: 'SHIPMATE1 <json>' lines. Exit 0 done, 3 refused (nothing applied), 1 error.
import json, os, runpy, sys
import django.core.management as M

A = sys.argv[1:]
O = A[2:]
n = 0
U = 'unsafe'
SV = 'the serving code '
t = lambda o: type(o).__name__
new = set()  # tables this plan creates: no serving code uses them


def F(kind, **k):  # a frame line, < 4000 bytes
  global n
  d = dict(seq=n, kind=kind, **k)
  while len(s := json.dumps(d, separators=(',', ':'))) > 3990:
    x = max((x for x in d if type(d[x]) is str), key=lambda x: len(d[x]))
    d[x] = d[x][:len(d[x]) // 2] + '\u2026'
  print('SHIPMATE1 ' + s, flush=True)
  n += 1


def mark(m):  # django-safemigrate >= 5: Safe(When.X); older: enum, str
  s = getattr(m, 'safe', 0)
  s = s() if callable(s) else s
  s = getattr(getattr(s, 'when', s), 'value', s)
  return s if s in ('before_deploy', 'after_deploy') else 'always'


def judge(o, a, st):
  # -> class, why it breaks the serving code, why it breaks the new code if run after deploy
  from django.db.models import NOT_PROVIDED as P
  T, G = t(o), lambda z: getattr(o, z, 0)
  if T in ('RunSQL', 'RunPython'):
    return 'unknown', f'{T} is not inspected: {getattr(G("code"), "__qualname__", 0) or o.sql}', 0
  if T == 'SeparateDatabaseAndState':
    return next((j for j in (judge(x, a, st) for x in o.database_operations) if j[0] != 'safe'), ('safe', 0, 0))
  key = a, G('model_name_lower') or G('old_name_lower') or G('name_lower')
  ms = st.models.get(key)
  tb = ms and f"table `{ms.options.get('db_table') or '_'.join(key)}`"
  nm = G('old_name') or G('name')
  f = ms and ms.fields.get(nm)
  g = G('field') or f
  c = g and f'column `{g.db_column or nm + "_id" * bool(g.many_to_one or g.one_to_one)}` of {tb}'
  q = lambda f: not (f.null or f.many_to_many or getattr(f, 'generated', 0)) and getattr(f, 'db_default', P) is P
  u = lambda w, nw=0: (U, SV + w, nw) if key not in new else ('safe', 0, nw)
  if T == 'RemoveField':
    return u(f'still reads {c}', f and q(f) and f'the new code inserts rows without NOT NULL {c}')
  if T in ('DeleteModel', 'AlterModelTable'):
    return u(f'still uses {tb}')
  if T in ('RenameField', 'RenameModel'):
    return u(f'still uses {c or tb}', 'the new code uses the new name before it exists')
  if T == 'AddField' and q(g):
    return u(f'inserts rows without the new NOT NULL {c}')
  if T == 'AlterField' and f and f.null and q(g):
    return u(f'may insert rows without {c}, now NOT NULL')
  return 'safe', 0, 0


def run(*_):
  import django
  django.setup()
  from django.db import DEFAULT_DB_ALIAS, connections
  from django.db.migrations.executor import MigrationExecutor
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
    sys.exit('conflicting migrations: run makemigrations --merge')
  plan = ex.migration_plan(L.graph.leaf_nodes())
  F('start', phase=ph, django=django.get_version())
  st, R = ex._create_project_state(with_applied_migrations=True), []
  W = {m: 'contract' if ph == 'contract' or mark(m) == 'after_deploy' else 'expand' for m, b in plan}
  late = {(m.app_label, m.name) for m in W if W[m] != 'expand'}
  for m, b in plan:
    i, a, x = I(m), m.app_label, None
    E = W[m] == 'expand'
    F('migration', id=i, marker=mark(m), run=W[m], operations=len(m.operations))
    if b:
      R.append((i, x, f'the plan unapplies {i}', 'release code that knows every applied migration'))
      continue
    d = E and ['.'.join(k) for k in L.graph.forwards_plan((a, m.name)) if k in late]
    if d:
      R.append((i, x, f'runs before the deployment but depends on {d[0]}, held back until after it', f'mark it Safe.after_deploy() too, or release {d[0]} first'))
    for x, o in enumerate(m.operations):
      k, w, nw = judge(o, a, st)
      if t(o) == 'CreateModel':
        new.add((a, o.name_lower))
      o.state_forwards(a, st)
      r = None
      if E and k == U:
        r = w, 'split it: expand now, contract later (mark the drop Safe.after_deploy())', 1
      elif E and k == 'unknown' and '--unknown=refuse' in O:
        r = w, 'review it, or mark it Safe.after_deploy()', 0
      elif ph != 'contract' and not E and nw:
        r = nw, 'make it nullable in an earlier release' if t(o) == 'RemoveField' else 'add the new name now, drop the old one after deploy', 1
      ov = r and r[2] and '--allow-unsafe' in O
      e = {'class': k, 'why': w, 'overridden': ov and r[0]}
      F('operation', migration=i, index=x, type=t(o), text=o.describe(), **{z: e[z] for z in e if e[z]})
      if r and not ov:
        R.append((i, x) + r[:2])
  for i, x, w, h in R:
    F('refusal', migration=i, index=x, why=w, hint=h)
  sub = [(m, b) for m, b in plan if W[m] == ph]
  v = 'nothing' if not plan else 'planned' if ph == 'plan' else 'refused' if R else 'applied'
  if v == 'applied' and sub:
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
