"""All SQL of the task store, one module per seam: jobs and their slots (`jobs.py`),
staged texts and their import (`staged_texts.py`), tasks (`tasks.py`), the entity
balance counted over stored spans (`entity_balance.py`); `rows.py` turns
rows into records. Every public method is one transaction on a pooled
connection; the methods that change a job send `pg_notify` in that same transaction,
so watchers hear of a change exactly when it becomes visible.

Locking, in the one order every method follows (so that none can deadlock another):
1. the job row (`FOR UPDATE`): appends, failure and cancellation of one job run one
   after the other, which makes counters and "slot i is written once" simple;
2. the project's advisory lock, held by appends while they insert texts: texts get
   their `seq` in commit order (keyset pages never skip one) and duplicate detection
   sees every earlier text of the project;
3. staged-text rows, always in `seq` order (imports, discards, edits).
"""
