"""Engine: runs one flow or one task.

Invariants:
- The run loop is written once, as a generator of effects (``effects.py``): the flow
  and task generators decide everything (states, retries, hooks, logs) and yield
  ``Call``/``Sleep``/``Hook``/``Wait`` effects. A thin sync driver and a thin async
  driver carry the effects out. A sync driver never starts an event loop for a sync
  function; an async function always runs on the async driver.
- Every state goes through the orchestration rules (``check_transition``) before it is
  recorded, so a run can never be recorded in an impossible order.
- Errors from user code become states; engine signals (``EngineSignal``), ``KeyboardInterrupt``
  and ``SystemExit`` become ``Crashed`` and are re-raised after the state is recorded.
- A hook that raises is logged and changes nothing.
"""
