"""drover's pytest worker: runs inside the user's interpreter, driven by a drover agent.

The agent starts ``python -m drover_worker --in-fd R --out-fd W ... -- PYTEST ARGS`` and
talks to it in JSON lines over the two inherited pipes (PROTOCOL.md, "Worker protocol").
pytest is started once; tests are then run by index in the order the agent sends them.
Needs only the standard library and pytest.
"""

PROTOCOL_VERSION = 1

# Optional commands this worker understands, announced in `hello`.
FEATURES = ("cancel", "stop")
